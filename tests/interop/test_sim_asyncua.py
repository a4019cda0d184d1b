"""The built-in simulator (`stator sim`) seen by a second, independent OPC UA stack: Python asyncua.

Run: STATOR_BIN=path/to/stator python3 -m pytest tests/interop -q
(STATOR_BIN defaults to $CARGO_TARGET_DIR/debug/stator, then target/debug/stator.)
"""

import asyncio
import os
import queue
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from asyncua import Client, ua

NAMESPACE_URI = "urn:stator:sim:ServerInterfaces"
WAIT_S = 10.0


def stator_bin() -> str:
    candidates = []
    if os.environ.get("STATOR_BIN"):
        candidates.append(Path(os.environ["STATOR_BIN"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "stator")
    candidates.append(Path(__file__).resolve().parents[2] / "target" / "debug" / "stator")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    pytest.fail(f"stator binary not found (set STATOR_BIN); tried {[str(c) for c in candidates]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim_url():
    """Starts `stator sim` on a free port; yields its endpoint URL; stops it with SIGTERM."""
    binary = stator_bin()
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "sim", "--listen", f"127.0.0.1:{port}", "--period-ms", "100", "--tags", "5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(l.strip()) for l in proc.stdout], daemon=True
        ).start()
        try:
            url = lines.get(timeout=WAIT_S)
        except queue.Empty:
            url = None
        if url:
            break
        proc.kill()
        proc.wait(timeout=WAIT_S)  # port collision or slow start: try another port
    else:
        pytest.fail("stator sim did not print its endpoint")
    assert url == f"opc.tcp://127.0.0.1:{port}", url
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=WAIT_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


async def child_map(node):
    out = {}
    for c in await node.get_children():
        out[(await c.read_browse_name()).Name] = c
    return out


def test_namespace_and_root_browse(sim_url):
    async def body():
        async with Client(sim_url, timeout=WAIT_S) as client:
            assert await client.get_namespace_index(NAMESPACE_URI) == 4
            root = client.get_node("ns=4;i=2")
            assert (await root.read_browse_name()).Name == "Stator_PLC"
            objects = await child_map(client.nodes.objects)
            assert objects["Stator_PLC"].nodeid == ua.NodeId(2, 4)
            names = await child_map(root)
            for expected in [
                "Active_Power_kW", "Reactive_Power_kvar", "Grid_Frequency_Hz", "Heartbeat_ms",
                "Status_Word", "Inverter_Count", "Plant_State", "Breaker_Closed",
                "Energy_Total_Wh", "SP_Power_Limit_kW", "SP_Power_Factor", "SP_Mode",
                "SP_Enable", "SP_Note", "CMD_Instant_Cutoff", "Meteo", "Load",
            ]:
                assert expected in names, expected
            meteo = await child_map(names["Meteo"])
            assert set(meteo) == {"Irradiance_W_m2", "Ambient_Temp_C", "Module_Temp_C", "Wind_Speed_m_s"}
            load = await child_map(names["Load"])
            assert set(load) == {f"T{i:05}" for i in range(5)}
            elems = await child_map(names["CMD_Instant_Cutoff"])
            assert set(elems) == {f"[{i}]" for i in range(8)}

    run(body())


def test_read_every_s7_type(sim_url):
    async def body():
        async with Client(sim_url, timeout=WAIT_S) as client:
            names = await child_map(client.get_node("ns=4;i=2"))
            expected = {
                "Breaker_Closed": ua.VariantType.Boolean,
                "Inverter_Count": ua.VariantType.Int16,
                "Heartbeat_ms": ua.VariantType.Int32,
                "Status_Word": ua.VariantType.UInt16,
                "Active_Power_kW": ua.VariantType.Float,
                "Grid_Frequency_Hz": ua.VariantType.Double,
                "Plant_State": ua.VariantType.String,
                "Energy_Total_Wh": ua.VariantType.UInt64,
                "SP_Energy_Offset_Wh": ua.VariantType.Int64,
                "SP_Priority": ua.VariantType.Byte,
                "Operating_Hours": ua.VariantType.UInt32,
                "SP_Maintenance_Due": ua.VariantType.DateTime,
            }
            for name, vtype in expected.items():
                dv = await names[name].read_data_value()
                assert dv.StatusCode.is_good(), name
                assert dv.Value.VariantType == vtype, (name, dv.Value)
                assert await names[name].read_data_type_as_variant_type() == vtype, name
            assert await names["Inverter_Count"].read_value() == 4
            freq = await names["Grid_Frequency_Hz"].read_value()
            assert 49.0 < freq < 51.0
            assert await names["Energy_Total_Wh"].read_value() >= 2**53
            cutoff = await names["CMD_Instant_Cutoff"].read_data_value()
            assert cutoff.Value.VariantType == ua.VariantType.Boolean
            assert len(cutoff.Value.Value) == 8
            # Writable setpoints say so, process values do not.
            rw = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask
            ro = ua.AccessLevel.CurrentRead.mask
            for name, want in [("SP_Mode", rw), ("CMD_Instant_Cutoff", rw), ("Active_Power_kW", ro)]:
                for attr in (ua.AttributeIds.AccessLevel, ua.AttributeIds.UserAccessLevel):
                    got = (await names[name].read_attribute(attr)).Value.Value
                    assert got == want, (name, attr, got)

    run(body())


def test_write_setpoints_and_cutoff_element(sim_url):
    async def body():
        async with Client(sim_url, timeout=WAIT_S) as client:
            names = await child_map(client.get_node("ns=4;i=2"))
            limit = names["SP_Power_Limit_kW"]
            await limit.write_value(ua.DataValue(ua.Variant(321.5, ua.VariantType.Float)))
            assert await limit.read_value() == pytest.approx(321.5)
            note = names["SP_Note"]
            await note.write_value(ua.DataValue(ua.Variant("from asyncua", ua.VariantType.String)))
            assert await note.read_value() == "from asyncua"
            # An S7 refuses a DInt written into an Int.
            with pytest.raises(ua.UaStatusCodeError) as err:
                await names["SP_Mode"].write_value(ua.DataValue(ua.Variant(2, ua.VariantType.Int32)))
            assert err.value.code == ua.StatusCodes.BadTypeMismatch
            # Read-only process value.
            with pytest.raises(ua.UaStatusCodeError):
                await names["Active_Power_kW"].write_value(
                    ua.DataValue(ua.Variant(1.0, ua.VariantType.Float))
                )
            # Element child [3] and the array stay in sync.
            cutoff = names["CMD_Instant_Cutoff"]
            elems = await child_map(cutoff)
            await elems["[3]"].write_value(ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
            assert await cutoff.read_value() == [False, False, False, True, False, False, False, False]
            await cutoff.write_value(
                ua.DataValue(ua.Variant([False] * 7 + [True], ua.VariantType.Boolean))
            )
            assert await elems["[3]"].read_value() is False
            assert await elems["[7]"].read_value() is True
            await cutoff.write_value(
                ua.DataValue(ua.Variant([False] * 8, ua.VariantType.Boolean))
            )

    run(body())


def test_subscription_delivers_changes(sim_url):
    class Handler:
        def __init__(self):
            self.values = []

        def datachange_notification(self, node, val, data):
            self.values.append((node.nodeid.Identifier, val))

    async def body():
        async with Client(sim_url, timeout=WAIT_S) as client:
            names = await child_map(client.get_node("ns=4;i=2"))
            load = await child_map(names["Load"])
            handler = Handler()
            sub = await client.create_subscription(100, handler)
            await sub.subscribe_data_change([names["Heartbeat_ms"], load["T00000"]])
            hb_id = names["Heartbeat_ms"].nodeid.Identifier
            t0_id = load["T00000"].nodeid.Identifier
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT_S
            while loop.time() < deadline:
                ids = [i for i, _ in handler.values]
                if ids.count(hb_id) >= 3 and ids.count(t0_id) >= 3:
                    break
                await asyncio.sleep(0.05)
            ids = [i for i, _ in handler.values]
            assert ids.count(hb_id) >= 3 and ids.count(t0_id) >= 3, handler.values
            beats = [v for i, v in handler.values if i == hb_id]
            assert beats == sorted(beats) and len(set(beats)) == len(beats)
            await sub.delete()

    run(body())

"""An independent Sparkplug B peer for Stator's MQTT test (src-tauri/tests/it/mqtt.rs).

Decodes everything published under spBv1.0/<group>/# with pysparkplug (its own protobuf
bindings of sparkplug_b.proto, paho-mqtt as the client) and prints one JSON line per message;
sends the commands it reads from stdin, encoded by pysparkplug. Checks on its own that `seq`
runs 0-255 without gaps per edge node session and that DDATA aliases were born, and prints
`{"type": "violation", ...}` lines when not. The Rust test drives it and asserts on the lines.

Run: python sparkplug_peer.py --port P --group G --edge E
stdin: {"cmd": "rebirth"} | {"cmd": "dcmd", "device": D, "name": N, "datatype": T, "value": V}
       | {"cmd": "raw", "topic": T, "hex": H}
"""

import argparse
import json
import sys
import threading

import paho.mqtt.client as paho
import pysparkplug as sp
from pysparkplug._protobuf import Payload as PBPayload

lock = threading.Lock()


def out(obj):
    with lock:
        print(json.dumps(obj, default=str), flush=True)


def props_of(raw):
    """Metric name -> {property: value} from the raw protobuf (pysparkplug hides properties)."""
    pb = PBPayload.FromString(raw)
    result = {}
    for m in pb.metrics:
        if not m.HasField("properties"):
            continue
        d = {}
        for k, v in zip(m.properties.keys, m.properties.values):
            field = v.WhichOneof("value")
            d[k] = getattr(v, field) if field else None
        result[m.name or str(m.alias)] = d
    return result


def metric_json(m, props):
    v = m.value
    if isinstance(v, bytes):
        v = v.hex()
    key = m.name if m.name is not None else str(m.alias)
    return {
        "name": m.name,
        "alias": m.alias,
        "datatype": int(m.datatype),
        "value": v,
        "timestamp": m.timestamp,
        "is_null": m.is_null,
        "is_historical": m.is_historical,
        "props": props.get(key, {}),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--edge", required=True)
    a = ap.parse_args()
    births = {}  # device -> DBirth
    last_seq = [None]

    def check_seq(kind, seq):
        if kind == "NBIRTH":
            if seq != 0:
                out({"type": "violation", "what": f"NBIRTH seq {seq}"})
        elif last_seq[0] is not None and seq != (last_seq[0] + 1) % 256:
            out({"type": "violation", "what": f"{kind} seq {seq} after {last_seq[0]}"})
        last_seq[0] = seq

    def on_message(_c, _u, msg):
        try:
            handle(msg)
        except Exception as e:  # noqa: BLE001 - report, never die
            out({"type": "violation", "what": f"{msg.topic}: {e!r}"})

    def handle(msg):
        parts = msg.topic.split("/")
        kind = parts[2]
        device = parts[4] if len(parts) > 4 else None
        raw = msg.payload
        try:
            if kind == "NBIRTH":
                p = sp.NBirth.decode(raw)
            elif kind == "DBIRTH":
                p = sp.DBirth.decode(raw)
                births[device] = p
            elif kind == "DDATA":
                if device not in births:
                    out({"type": "violation", "what": f"DDATA of {device} before its DBIRTH"})
                    return
                p = sp.DData.decode(raw, birth=births[device])
            elif kind == "DDEATH":
                p = sp.DDeath.decode(raw)
                births.pop(device, None)
            elif kind == "NDEATH":
                p = sp.NDeath.decode(raw)
                out({"type": "NDEATH", "bdSeq": p.bd_seq_metric.value})
                return
            else:
                return  # our own commands
        except Exception as e:  # noqa: BLE001 - report, never die
            out({"type": "violation", "what": f"{kind}: cannot decode: {e!r}"})
            return
        check_seq(kind, p.seq)
        props = props_of(raw)
        metrics = [metric_json(m, props) for m in getattr(p, "metrics", ())]
        out({"type": kind, "device": device, "seq": p.seq, "metrics": metrics})

    c = paho.Client(client_id=f"peer-{a.edge}", clean_session=True)
    c.on_message = on_message
    c.on_subscribe = lambda *_: out({"type": "ready"})
    c.connect("127.0.0.1", a.port)
    c.subscribe(f"spBv1.0/{a.group}/#", qos=1)
    c.loop_start()
    base = f"spBv1.0/{a.group}"
    for line in sys.stdin:
        cmd = json.loads(line)
        now = sp.get_current_timestamp()
        if cmd["cmd"] == "rebirth":
            m = sp.Metric(timestamp=now, name="Node Control/Rebirth",
                          datatype=sp.DataType.BOOLEAN, value=True)
            payload = sp.NCmd(timestamp=now, metrics=(m,)).encode(include_dtypes=True)
            c.publish(f"{base}/NCMD/{a.edge}", payload, qos=1)
        elif cmd["cmd"] == "dcmd":
            m = sp.Metric(timestamp=now, name=cmd["name"],
                          datatype=sp.DataType(cmd["datatype"]), value=cmd["value"])
            payload = sp.DCmd(timestamp=now, metrics=(m,)).encode(include_dtypes=True)
            c.publish(f"{base}/DCMD/{a.edge}/{cmd['device']}", payload, qos=1)
        elif cmd["cmd"] == "state":
            body = json.dumps({"online": cmd["online"], "timestamp": now})
            c.publish(f"spBv1.0/STATE/{cmd['host']}", body, qos=1, retain=True)
        elif cmd["cmd"] == "raw":
            c.publish(cmd["topic"], bytes.fromhex(cmd["hex"]), qos=1)
        out({"type": "sent", "cmd": cmd["cmd"]})
    c.loop_stop()


if __name__ == "__main__":
    main()

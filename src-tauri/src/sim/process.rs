//! The simulated plant: a PV park whose values change plausibly every `--period-ms`.
//!
//! A day is compressed into [`DAY_SECONDS`] (sunrise to sunset in 5 minutes), starting at
//! 10:00 so a fresh demo shows power at once. Power follows the sun, is capped by
//! `SP_Power_Limit_kW`, and drops to 0 when `SP_Enable` is false, `SP_Mode` is 0 or any
//! `CMD_Instant_Cutoff` bit is set (which also opens the breaker). The scan loop reads the
//! setpoints from the address space each tick and writes the process values back in one
//! locked batch, then notifies subscriptions.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opcua::types::{DateTime, NodeId, NumericRange, Variant};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::address_space::{self, Links, SimNodeManager};
use super::tags::{
    self, SimType, TagInfo, CUTOFF_LEN, INVERTERS, NS, PRESSURE_SENSORS, RAW_FULL_SCALE,
};
use opcua::server::SubscriptionCache;

/// Length of one simulated day in real seconds.
pub const DAY_SECONDS: f64 = 600.0;
/// Simulated hour of day at start.
const START_HOUR: f64 = 10.0;

/// The setpoints the model reacts to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Inputs {
    pub enable: bool,
    pub mode: i16,
    pub limit_kw: f32,
    pub power_factor: f64,
    pub cutoff: [bool; CUTOFF_LEN],
    /// Per pressure sensor: (gain, offset, applied reference) as the PLC program holds them.
    pub pressure: [(f32, f32, f32); 3],
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            enable: true,
            mode: 1,
            limit_kw: 1000.0,
            power_factor: 1.0,
            cutoff: [false; CUTOFF_LEN],
            pressure: PRESSURE_SENSORS.map(|p| (p.nominal_gain(), 0.0, -1.0)),
        }
    }
}

/// The model state of one park.
pub(crate) struct Model {
    park: usize,
    capacity_kw: f64,
    cloud: f64,
    energy_wh: u64,
    energy_frac: f64,
    op_hours: u32,
    running_s: f64,
    was_tripped: bool,
    toggle: bool,
    load: usize,
    rng: StdRng,
}

/// What one step produced: (tag name, value) pairs.
pub(crate) type Outputs = Vec<(&'static str, Variant)>;

impl Model {
    /// A fresh model for park `park` with `load` extra `Load` tags.
    pub(crate) fn new(park: usize, load: usize) -> Model {
        Model {
            park,
            capacity_kw: 1000.0 + 250.0 * (park % 4) as f64,
            cloud: 0.9,
            energy_wh: 9_007_199_254_740_993,
            energy_frac: 0.0,
            op_hours: 43_812,
            running_s: 0.0,
            was_tripped: false,
            toggle: false,
            load,
            rng: StdRng::seed_from_u64(0x5747_0000 + park as u64),
        }
    }

    fn noise(&mut self, amplitude: f64) -> f64 {
        self.rng.gen_range(-amplitude..=amplitude)
    }

    /// Advances the model to `t` seconds since start, `dt` seconds after the last step.
    pub(crate) fn step(&mut self, t: f64, dt: f64, inp: &Inputs) -> (Outputs, Vec<f32>) {
        let hour = (START_HOUR + t / DAY_SECONDS * 24.0 + 0.1 * self.park as f64) % 24.0;
        let sun = if (6.0..18.0).contains(&hour) {
            (PI * (hour - 6.0) / 12.0).sin().max(0.0)
        } else {
            0.0
        };
        self.cloud = (self.cloud + self.noise(0.03)).clamp(0.55, 1.0);
        let irradiance = (1000.0 * sun.powf(1.2) * self.cloud + self.noise(3.0)).max(0.0);
        let ambient = 12.0 + 8.0 * sun + self.noise(0.05);
        let module = ambient + irradiance * 0.03;
        let wind = (3.0 + 2.0 * (t / 37.0).sin() + self.noise(0.4)).max(0.0);

        let tripped = inp.cutoff.iter().any(|b| *b);
        let running = inp.enable && inp.mode != 0 && !tripped;
        let available =
            (self.capacity_kw * irradiance / 1000.0 * (1.0 - 0.004 * (module - 25.0))).max(0.0);
        let limit = f64::from(inp.limit_kw).max(0.0);
        let curtailed = running && available > limit;
        let power = if running { available.min(limit) } else { 0.0 };
        let pf = inp.power_factor.clamp(-1.0, 1.0);
        let pf_abs = pf.abs().max(0.5);
        let reactive = power * (pf_abs.acos()).tan() * if pf < 0.0 { -1.0 } else { 1.0 };
        let frequency = 50.0 + 0.03 * (t / 7.0).sin() + self.noise(0.005);
        let night = irradiance < 5.0;

        let wh = power * dt / 3.6 + self.energy_frac; // kW * s → Wh
        self.energy_frac = wh.fract();
        self.energy_wh = self.energy_wh.saturating_add(wh.max(0.0) as u64);
        if running {
            self.running_s += dt;
            // One operating hour per compressed hour of running.
            if self.running_s >= DAY_SECONDS / 24.0 {
                self.running_s -= DAY_SECONDS / 24.0;
                self.op_hours = self.op_hours.saturating_add(1);
            }
        }
        self.toggle = !self.toggle;
        let status: u16 = (running as u16)
            | ((!tripped as u16) << 1)
            | ((curtailed as u16) << 2)
            | ((tripped as u16) << 3)
            | ((inp.enable as u16) << 4)
            | ((night as u16) << 5)
            | ((self.toggle as u16) << 15);
        let state = if tripped {
            "TRIPPED"
        } else if !inp.enable || inp.mode == 0 {
            "STOPPED"
        } else if night {
            "NIGHT"
        } else if curtailed {
            "CURTAILED"
        } else {
            "RUNNING"
        };
        let share = power / INVERTERS as f64;
        let inverters: Vec<Variant> = (0..INVERTERS)
            .map(|_| {
                let n = self.noise(0.01);
                Variant::Float((share * (1.0 + n)).max(0.0) as f32)
            })
            .collect();

        let mut out: Outputs = vec![
            ("Active_Power_kW", Variant::Float(power as f32)),
            ("Reactive_Power_kvar", Variant::Float(reactive as f32)),
            ("Grid_Frequency_Hz", Variant::Double(frequency)),
            (
                "Heartbeat_ms",
                Variant::Int32(((t * 1000.0) as i64 % i64::from(i32::MAX)) as i32),
            ),
            ("Status_Word", Variant::UInt16(status)),
            ("Plant_State", Variant::String(state.into())),
            ("Breaker_Closed", Variant::Boolean(!tripped)),
            ("Energy_Total_Wh", Variant::UInt64(self.energy_wh)),
            ("Operating_Hours", Variant::UInt32(self.op_hours)),
            (
                "Inverter_Power_kW",
                tags::vec_variant(SimType::Float, inverters),
            ),
            ("Meteo/Irradiance_W_m2", Variant::Float(irradiance as f32)),
            ("Meteo/Ambient_Temp_C", Variant::Float(ambient as f32)),
            ("Meteo/Module_Temp_C", Variant::Float(module as f32)),
            ("Meteo/Wind_Speed_m_s", Variant::Float(wind as f32)),
        ];
        for (p, &(gain, offset, applied)) in PRESSURE_SENSORS.iter().zip(&inp.pressure) {
            // The process pressure wanders slowly around 40 % of the range unless a reference
            // pump is connected; the sensor has its error and ±1 count of noise; the program
            // scales the raw counts with its gain and offset (in Real arithmetic, as an S7 does).
            let process = p.full_scale * (0.4 + 0.05 * (t / 45.0).sin());
            let truth = if applied >= 0.0 {
                f64::from(applied)
            } else {
                process
            };
            let sensed = truth * p.gain_error + p.offset_error;
            let counts = (sensed / p.full_scale * RAW_FULL_SCALE).round() + self.noise(1.0).round();
            let raw = counts.clamp(-32768.0, 32767.0) as i16;
            let value = f32::from(raw) * gain + offset;
            out.push((p.raw, Variant::Int16(raw)));
            out.push((p.value, Variant::Float(value)));
        }
        if tripped && !self.was_tripped {
            out.push((
                "Last_Trip_Time",
                Variant::DateTime(Box::new(DateTime::now())),
            ));
        }
        self.was_tripped = tripped;

        let n = self.load.max(1) as f64;
        let load = (0..self.load)
            .map(|i| {
                let phase = 2.0 * PI * (t / 20.0 + i as f64 / n);
                (50.0 + 40.0 * phase.sin() + self.noise(0.5)) as f32
            })
            .collect();
        (out, load)
    }
}

/// Reads the setpoints the model needs from the address space.
fn read_inputs(
    space: &opcua::server::address_space::AddressSpace,
    ids: &HashMap<String, NodeId>,
) -> Inputs {
    let get = |name: &str| {
        ids.get(name)
            .and_then(|id| address_space::current(space, id))
    };
    let mut inp = Inputs::default();
    if let Some(Variant::Boolean(b)) = get("SP_Enable") {
        inp.enable = b;
    }
    if let Some(Variant::Int16(m)) = get("SP_Mode") {
        inp.mode = m;
    }
    if let Some(Variant::Float(l)) = get("SP_Power_Limit_kW") {
        inp.limit_kw = l;
    }
    if let Some(Variant::Double(pf)) = get("SP_Power_Factor") {
        inp.power_factor = pf;
    }
    for (slot, p) in inp.pressure.iter_mut().zip(PRESSURE_SENSORS.iter()) {
        for (field, name) in [(0, p.gain), (1, p.offset), (2, p.applied)] {
            if let Some(Variant::Float(v)) = get(name) {
                match field {
                    0 => slot.0 = v,
                    1 => slot.1 = v,
                    _ => slot.2 = v,
                }
            }
        }
    }
    if let Some(Variant::Array(a)) = get("CMD_Instant_Cutoff") {
        for (slot, v) in inp.cutoff.iter_mut().zip(a.values.iter()) {
            *slot = matches!(v, Variant::Boolean(true));
        }
    }
    inp
}

/// The source timestamps of the scan loop: every value of one step carries the step's
/// *scheduled* time on the wall clock (as a PLC stamps the values of one cycle), anchored once,
/// so that consecutive steps are exactly one period apart.
///
/// Why not `now` per value: async-opcua's server emulates a monitored item's sampling interval
/// by source-time gaps (`MonitoredItem::notify_data_value`): a value less than one sampling
/// interval after the last one is held back, restamped to last + interval and released only at
/// a later publish. With jittery `now` stamps and a sampling interval equal to the period (what
/// the engine requests), about half of all changes came a fraction of a millisecond "early"
/// and were held, and those whose publish fell into that fraction waited a whole publishing
/// interval more — a simulator artefact in the live path's p99 (docs/performance.md).
pub(crate) struct Grid {
    /// A scheduled tick and its wall-clock time.
    at: tokio::time::Instant,
    wall: chrono::DateTime<chrono::Utc>,
}

impl Grid {
    /// How far the anchored stamps may drift from the wall clock (it was set, or slewed against
    /// the monotonic clock) before the grid re-anchors.
    const DRIFT: Duration = Duration::from_millis(10);

    /// Anchored at the tick scheduled for `at`, which the wall clock read as `wall`.
    pub(crate) fn new(at: tokio::time::Instant, wall: chrono::DateTime<chrono::Utc>) -> Grid {
        Grid { at, wall }
    }

    /// The timestamp of the step scheduled for `scheduled`, run at `now` (monotonic) when the
    /// wall clock read `wall`: the anchor plus the scheduled distance, so a late wake-up does
    /// not shift it. Never in the future; when it is more than [`Grid::DRIFT`] away from the
    /// wall-clock time of `scheduled`, the grid re-anchors there (that one gap is then off by
    /// the drift).
    pub(crate) fn stamp(
        &mut self,
        scheduled: tokio::time::Instant,
        now: tokio::time::Instant,
        wall: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        let dur = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let expected = wall - dur(now.saturating_duration_since(scheduled));
        let t = self
            .wall
            .checked_add_signed(dur(scheduled.saturating_duration_since(self.at)));
        match t {
            Some(t) if t <= wall && (t - expected).abs() <= dur(Self::DRIFT) => t,
            _ => {
                self.at = scheduled;
                self.wall = expected;
                expected
            }
        }
    }
}

/// Everything the scan loop of one park needs.
pub(crate) struct ScanLoop {
    pub park: usize,
    pub period: Duration,
    pub manager: Arc<SimNodeManager>,
    pub subscriptions: Arc<SubscriptionCache>,
    pub links: Arc<Links>,
    pub tags: Arc<Vec<TagInfo>>,
    pub load: usize,
    pub token: CancellationToken,
}

impl ScanLoop {
    /// Runs until the token is cancelled.
    pub(crate) async fn run(self) {
        let ids: HashMap<String, NodeId> = self
            .tags
            .iter()
            .map(|t| (t.name.clone(), t.node_id()))
            .collect();
        let load_ids: Vec<NodeId> = (0..self.load)
            .map(|i| NodeId::new(NS, tags::LOAD_FIRST_ID + i as u32))
            .collect();
        let mut model = Model::new(self.park, self.load);
        let start = Instant::now();
        let mut last = start;
        let period = self.period.max(Duration::from_millis(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut grid: Option<Grid> = None;
        loop {
            let scheduled = tokio::select! {
                _ = self.token.cancelled() => break,
                at = tick.tick() => at,
            };
            let wall = chrono::Utc::now();
            let stamp: DateTime = grid
                .get_or_insert_with(|| Grid::new(scheduled, wall))
                .stamp(scheduled, tokio::time::Instant::now(), wall)
                .into();
            let now = Instant::now();
            let dt = now.duration_since(last).as_secs_f64();
            last = now;
            let t = now.duration_since(start).as_secs_f64();
            let space_lock = self.manager.address_space();
            let inputs = read_inputs(&space_lock.read(), &ids);
            let (outputs, load) = model.step(t, dt, &inputs);
            let mut space = space_lock.write();
            let mut changed = Vec::with_capacity(outputs.len() + load.len());
            for (name, value) in outputs {
                if let Some(id) = ids.get(name) {
                    // Unchanged values keep their timestamp, as on a PLC.
                    if address_space::current(&space, id).as_ref() == Some(&value) {
                        continue;
                    }
                    if let Err(e) = address_space::apply_at(
                        &mut space,
                        &self.links,
                        id,
                        &NumericRange::None,
                        value,
                        &stamp,
                        &mut changed,
                    ) {
                        tracing::warn!(
                            park = self.park,
                            tag = name,
                            "simulator update failed: {e}"
                        );
                    }
                }
            }
            for (id, v) in load_ids.iter().zip(load) {
                let _ = address_space::apply_at(
                    &mut space,
                    &self.links,
                    id,
                    &NumericRange::None,
                    Variant::Float(v),
                    &stamp,
                    &mut changed,
                );
            }
            address_space::notify(&space, &self.subscriptions, &changed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(out: &'a Outputs, name: &str) -> &'a Variant {
        &out.iter().find(|(n, _)| *n == name).expect(name).1
    }

    #[test]
    fn steps_are_stamped_exactly_one_period_apart_whatever_the_wake_up_jitter() {
        let period = Duration::from_millis(100);
        let t0 = tokio::time::Instant::now();
        let w0 = chrono::Utc::now();
        let mut grid = Grid::new(t0, w0);
        let ms = |n: u64| Duration::from_millis(n);
        let us = |n: u64| Duration::from_micros(n);
        let mut last = grid.stamp(t0, t0 + us(300), w0 + chrono::Duration::microseconds(300));
        // Each step wakes 0.05–7 ms late, and the wall clock is read a little after `now`:
        // stamps are still exactly one period apart (the sampling-interval filter of the OPC UA
        // server never sees a gap of 99.9 ms).
        for (k, late) in [
            (1, us(50)),
            (2, ms(7)),
            (3, us(900)),
            (4, ms(3)),
            (5, us(60)),
        ] {
            let scheduled = t0 + period * k;
            let now = scheduled + late;
            let wall = w0 + chrono::Duration::from_std(period * k + late + us(3)).unwrap();
            let t = grid.stamp(scheduled, now, wall);
            assert_eq!(
                t - last,
                chrono::Duration::from_std(period).unwrap(),
                "step {k}"
            );
            assert!(t <= wall, "never in the future");
            last = t;
        }
        // A skipped tick (the process stalled): the next step is two periods on.
        let scheduled = t0 + period * 7;
        let t = grid.stamp(
            scheduled,
            scheduled + us(10),
            w0 + chrono::Duration::from_std(period * 7 + us(20)).unwrap(),
        );
        assert_eq!(t - last, chrono::Duration::from_std(period * 2).unwrap());
        // The wall clock was set back by 1 s: re-anchored, never a stamp in the future.
        let scheduled = t0 + period * 8;
        let wall =
            w0 + chrono::Duration::from_std(period * 8).unwrap() - chrono::Duration::seconds(1);
        let t = grid.stamp(scheduled, scheduled, wall);
        assert_eq!(t, wall);
        let next = grid.stamp(
            scheduled + period,
            scheduled + period + ms(2),
            wall + chrono::Duration::from_std(period + ms(2)).unwrap(),
        );
        assert_eq!(next - t, chrono::Duration::from_std(period).unwrap());
    }

    #[test]
    fn power_respects_limit_enable_and_cutoff() {
        let mut m = Model::new(0, 0);
        let inp = Inputs {
            limit_kw: 100.0,
            ..Inputs::default()
        };
        // 10:00 + 1/4 day → around 16:00 at most; take an early step at ~10:00.
        let (out, _) = m.step(1.0, 1.0, &inp);
        let Variant::Float(p) = value(&out, "Active_Power_kW") else {
            panic!()
        };
        assert!(*p > 0.0 && *p <= 100.0, "{p}");
        assert_eq!(
            value(&out, "Plant_State"),
            &Variant::String("CURTAILED".into())
        );

        let mut cut = Inputs::default();
        cut.cutoff[3] = true;
        let (out, _) = m.step(2.0, 1.0, &cut);
        assert_eq!(value(&out, "Active_Power_kW"), &Variant::Float(0.0));
        assert_eq!(value(&out, "Breaker_Closed"), &Variant::Boolean(false));
        assert_eq!(
            value(&out, "Plant_State"),
            &Variant::String("TRIPPED".into())
        );

        let off = Inputs {
            enable: false,
            ..Inputs::default()
        };
        let (out, _) = m.step(3.0, 1.0, &off);
        assert_eq!(
            value(&out, "Plant_State"),
            &Variant::String("STOPPED".into())
        );
    }

    #[test]
    fn pressure_follows_raw_gain_and_offset() {
        let mut m = Model::new(0, 0);
        let mut inp = Inputs::default();
        inp.pressure[0] = (0.001, 1.0, 5.0);
        let (out, _) = m.step(1.0, 1.0, &inp);
        let Variant::Int16(raw) = value(&out, "Pressure_P1_raw") else {
            panic!()
        };
        // 5 bar applied, read 2 % high + 0.1 bar: 5.2 bar of 10 → 14376 counts ± 1.
        assert!((i32::from(*raw) - 14376).abs() <= 1, "{raw}");
        let Variant::Float(v) = value(&out, "Pressure_P1_bar") else {
            panic!()
        };
        assert!((*v - (f32::from(*raw) * 0.001 + 1.0)).abs() < 1e-4, "{v}");
    }

    #[test]
    fn load_values_change_every_step() {
        let mut m = Model::new(1, 5);
        let (_, a) = m.step(1.0, 0.1, &Inputs::default());
        let (_, b) = m.step(1.1, 0.1, &Inputs::default());
        assert_eq!(a.len(), 5);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
    }
}

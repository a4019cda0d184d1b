//! The simulator's tag table: which variables a park exposes, their NodeIds, S7 types and
//! writability. One place, so the address space, the process model, the tests and
//! docs/simulator.md agree on the same list.

use opcua::types::{DataTypeId, DateTime, NodeId, Variant};

/// Namespace index of every simulator node (as on an S7-1200 server interface).
pub const NS: u16 = 4;
/// Numeric id (in [`NS`]) of the root object, i.e. `ns=4;i=2`.
pub const ROOT_ID: u32 = 2;
/// Browse name of the root object (under `Objects`).
pub const ROOT_NAME: &str = "Stator_PLC";
/// Namespace URI registered at index [`NS`].
pub const NAMESPACE_URI: &str = "urn:stator:sim:ServerInterfaces";
/// Namespaces registered before ours so that ours lands at index 4 (as on a Siemens server).
pub(crate) const FILLER_NAMESPACES: [&str; 2] = [
    "http://opcfoundation.org/UA/DI/",
    "http://www.siemens.com/simatic-s7-opcua",
];

/// Length of the `CMD_Instant_Cutoff` Bool array.
pub const CUTOFF_LEN: usize = 8;
/// Number of inverters (length of the `Inverter_Power_kW` array).
pub const INVERTERS: usize = 4;
/// Longest string an S7 `String` holds; longer writes are refused with BadOutOfRange.
pub const MAX_STRING_LEN: usize = 254;

/// Numeric id of the `Meteo` folder.
pub(crate) const METEO_FOLDER_ID: u32 = 200;
/// Numeric id of the `Load` folder.
pub(crate) const LOAD_FOLDER_ID: u32 = 1000;
/// First numeric id of the `Load/Tnnnnn` tags.
pub(crate) const LOAD_FIRST_ID: u32 = 100_000;

/// The S7 data types the simulator exposes (OPC UA built-in types underneath).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimType {
    /// S7 Bool.
    Boolean,
    /// S7 Byte.
    Byte,
    /// S7 Int.
    Int16,
    /// S7 Word / UInt.
    UInt16,
    /// S7 DInt.
    Int32,
    /// S7 UDInt / DWord.
    UInt32,
    /// S7 LInt.
    Int64,
    /// S7 ULInt / LWord.
    UInt64,
    /// S7 Real.
    Float,
    /// S7 LReal.
    Double,
    /// S7 String.
    String,
    /// S7 DTL / DATE_AND_TIME (as OPC UA DateTime).
    DateTime,
}

impl SimType {
    /// The OPC UA DataType NodeId of this type.
    pub fn data_type_id(self) -> DataTypeId {
        match self {
            SimType::Boolean => DataTypeId::Boolean,
            SimType::Byte => DataTypeId::Byte,
            SimType::Int16 => DataTypeId::Int16,
            SimType::UInt16 => DataTypeId::UInt16,
            SimType::Int32 => DataTypeId::Int32,
            SimType::UInt32 => DataTypeId::UInt32,
            SimType::Int64 => DataTypeId::Int64,
            SimType::UInt64 => DataTypeId::UInt64,
            SimType::Float => DataTypeId::Float,
            SimType::Double => DataTypeId::Double,
            SimType::String => DataTypeId::String,
            SimType::DateTime => DataTypeId::DateTime,
        }
    }

    /// The OPC UA name of this type, as printed by `stator discover` ("Float", "Int16", …).
    pub fn name(self) -> &'static str {
        match self {
            SimType::Boolean => "Boolean",
            SimType::Byte => "Byte",
            SimType::Int16 => "Int16",
            SimType::UInt16 => "UInt16",
            SimType::Int32 => "Int32",
            SimType::UInt32 => "UInt32",
            SimType::Int64 => "Int64",
            SimType::UInt64 => "UInt64",
            SimType::Float => "Float",
            SimType::Double => "Double",
            SimType::String => "String",
            SimType::DateTime => "DateTime",
        }
    }

    /// A zero value of this type (also lets tests compare Variant kinds).
    pub fn zero(self) -> Variant {
        match self {
            SimType::Boolean => Variant::Boolean(false),
            SimType::Byte => Variant::Byte(0),
            SimType::Int16 => Variant::Int16(0),
            SimType::UInt16 => Variant::UInt16(0),
            SimType::Int32 => Variant::Int32(0),
            SimType::UInt32 => Variant::UInt32(0),
            SimType::Int64 => Variant::Int64(0),
            SimType::UInt64 => Variant::UInt64(0),
            SimType::Float => Variant::Float(0.0),
            SimType::Double => Variant::Double(0.0),
            SimType::String => Variant::String("".into()),
            SimType::DateTime => Variant::DateTime(Box::new(DateTime::null())),
        }
    }
}

/// One tag as a client sees it after discovery: arrays are one tag (their element children
/// `[0]`, `[1]`, … are not listed separately).
#[derive(Debug, Clone, PartialEq)]
pub struct TagInfo {
    /// Browse path below the root joined with `/`, e.g. `Meteo/Irradiance_W_m2`.
    pub name: String,
    /// Numeric id in namespace [`NS`].
    pub id: u32,
    /// The element type.
    pub sim_type: SimType,
    /// `Some(n)` for a one-dimensional array of `n` elements.
    pub array_len: Option<usize>,
    /// AccessLevel and UserAccessLevel include CurrentWrite.
    pub writable: bool,
}

impl TagInfo {
    /// The NodeId (`ns=4;i=…`).
    pub fn node_id(&self) -> NodeId {
        NodeId::new(NS, self.id)
    }

    /// Numeric id of element `index`'s child variable (`[index]`) of an array tag.
    pub fn element_id(&self, index: usize) -> u32 {
        self.id + 1 + index as u32
    }
}

fn tag(name: &str, id: u32, sim_type: SimType, writable: bool) -> TagInfo {
    TagInfo {
        name: name.to_string(),
        id,
        sim_type,
        array_len: None,
        writable,
    }
}

fn array(name: &str, id: u32, sim_type: SimType, len: usize, writable: bool) -> TagInfo {
    TagInfo {
        array_len: Some(len),
        ..tag(name, id, sim_type, writable)
    }
}

/// The standard tag set of every park (without the `Load` tags), in browse order.
pub fn standard_tags() -> Vec<TagInfo> {
    use SimType::*;
    vec![
        // Process values (read-only).
        tag("Active_Power_kW", 10, Float, false),
        tag("Reactive_Power_kvar", 11, Float, false),
        tag("Grid_Frequency_Hz", 12, Double, false),
        tag("Heartbeat_ms", 13, Int32, false),
        tag("Status_Word", 14, UInt16, false),
        tag("Inverter_Count", 15, Int16, false),
        tag("Plant_State", 16, String, false),
        tag("Breaker_Closed", 17, Boolean, false),
        tag("Energy_Total_Wh", 18, UInt64, false),
        tag("Operating_Hours", 19, UInt32, false),
        tag("Last_Trip_Time", 20, DateTime, false),
        // Setpoints (writable).
        tag("SP_Power_Limit_kW", 40, Float, true),
        tag("SP_Power_Factor", 41, Double, true),
        tag("SP_Mode", 42, Int16, true),
        tag("SP_Enable", 43, Boolean, true),
        tag("SP_Note", 44, String, true),
        tag("SP_Ramp_Rate_kW_s", 45, Int32, true),
        tag("SP_Alarm_Mask", 46, UInt16, true),
        tag("SP_Priority", 47, Byte, true),
        tag("SP_Energy_Offset_Wh", 48, Int64, true),
        tag("SP_Maintenance_Due", 49, DateTime, true),
        // Pressure sensors scaled like an S7 program: value = raw × gain + offset.
        tag("Pressure_P1_bar", 60, Float, false),
        tag("Pressure_P1_raw", 61, Int16, false),
        tag("P1_Cal_Gain", 62, Float, true),
        tag("P1_Cal_Offset", 63, Float, true),
        tag("P1_Applied_bar", 64, Float, true),
        tag("Pressure_P2_bar", 65, Float, false),
        tag("Pressure_P2_raw", 66, Int16, false),
        tag("P2_Cal_Gain", 67, Float, true),
        tag("P2_Cal_Offset", 68, Float, true),
        tag("P2_Applied_bar", 69, Float, true),
        tag("Pressure_P3_mbar", 70, Float, false),
        tag("Pressure_P3_raw", 71, Int16, false),
        tag("P3_Cal_Gain", 72, Float, true),
        tag("P3_Cal_Offset", 73, Float, true),
        tag("P3_Applied_mbar", 74, Float, true),
        // Arrays: element children at id+1 … id+len.
        array("CMD_Instant_Cutoff", 100, Boolean, CUTOFF_LEN, true),
        array("Inverter_Power_kW", 120, Float, INVERTERS, false),
        // Subfolder.
        tag("Meteo/Irradiance_W_m2", 201, Float, false),
        tag("Meteo/Ambient_Temp_C", 202, Float, false),
        tag("Meteo/Module_Temp_C", 203, Float, false),
        tag("Meteo/Wind_Speed_m_s", 204, Float, false),
    ]
}

/// Name of the `i`-th load tag: `Load/T00000`, `Load/T00001`, …
pub fn load_tag_name(i: usize) -> String {
    format!("Load/T{i:05}")
}

/// The `Load` tags of a park started with `--tags n`.
pub fn load_tags(n: usize) -> Vec<TagInfo> {
    (0..n)
        .map(|i| {
            tag(
                &load_tag_name(i),
                LOAD_FIRST_ID + i as u32,
                SimType::Float,
                false,
            )
        })
        .collect()
}

/// Every tag of a park started with `--tags extra`, standard ones first.
pub fn all_tags(extra: usize) -> Vec<TagInfo> {
    let mut t = standard_tags();
    t.extend(load_tags(extra));
    t
}

/// Raw counts of an S7 analog input at the top of its range (0 … 27648).
pub const RAW_FULL_SCALE: f64 = 27648.0;

/// One simulated pressure sensor: its tags and its (deliberate) error, so that a fresh
/// simulator needs calibrating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PressureSensor {
    pub value: &'static str,
    pub raw: &'static str,
    pub gain: &'static str,
    pub offset: &'static str,
    /// Writable: the pressure a reference pump applies (a serviceman's calibrator); a negative
    /// value means "connected to the process" again.
    pub applied: &'static str,
    /// Top of the range in engineering units (the bottom is 0).
    pub full_scale: f64,
    /// The sensor reads `true × gain_error + offset_error` (engineering units).
    pub gain_error: f64,
    pub offset_error: f64,
}

/// P1 0–10 bar, P2 0–5 bar, P3 0–1000 mbar.
pub const PRESSURE_SENSORS: [PressureSensor; 3] = [
    PressureSensor {
        value: "Pressure_P1_bar",
        raw: "Pressure_P1_raw",
        gain: "P1_Cal_Gain",
        offset: "P1_Cal_Offset",
        applied: "P1_Applied_bar",
        full_scale: 10.0,
        gain_error: 1.02,
        offset_error: 0.1,
    },
    PressureSensor {
        value: "Pressure_P2_bar",
        raw: "Pressure_P2_raw",
        gain: "P2_Cal_Gain",
        offset: "P2_Cal_Offset",
        applied: "P2_Applied_bar",
        full_scale: 5.0,
        gain_error: 0.985,
        offset_error: -0.04,
    },
    PressureSensor {
        value: "Pressure_P3_mbar",
        raw: "Pressure_P3_raw",
        gain: "P3_Cal_Gain",
        offset: "P3_Cal_Offset",
        applied: "P3_Applied_mbar",
        full_scale: 1000.0,
        gain_error: 1.01,
        offset_error: 6.0,
    },
];

impl PressureSensor {
    /// The nominal gain an uncalibrated program uses: full scale per 27648 counts.
    pub fn nominal_gain(&self) -> f32 {
        (self.full_scale / RAW_FULL_SCALE) as f32
    }
}

/// The initial value of a standard tag (the process model overwrites the changing ones).
pub(crate) fn initial_value(t: &TagInfo) -> Variant {
    if let Some(p) = PRESSURE_SENSORS.iter().find(|p| p.gain == t.name) {
        return Variant::Float(p.nominal_gain());
    }
    if PRESSURE_SENSORS.iter().any(|p| p.applied == t.name) {
        return Variant::Float(-1.0);
    }
    let scalar = match t.name.as_str() {
        "Grid_Frequency_Hz" => Variant::Double(50.0),
        "Inverter_Count" => Variant::Int16(INVERTERS as i16),
        "Plant_State" => Variant::String("STARTING".into()),
        "Breaker_Closed" => Variant::Boolean(true),
        // Beyond 2^53 on purpose: clients must not round it through a double.
        "Energy_Total_Wh" => Variant::UInt64(9_007_199_254_740_993),
        "Operating_Hours" => Variant::UInt32(43_812),
        "Last_Trip_Time" => Variant::DateTime(Box::new(DateTime::now())),
        "SP_Power_Limit_kW" => Variant::Float(1000.0),
        "SP_Power_Factor" => Variant::Double(1.0),
        "SP_Mode" => Variant::Int16(1),
        "SP_Enable" => Variant::Boolean(true),
        "SP_Note" => Variant::String("".into()),
        "SP_Ramp_Rate_kW_s" => Variant::Int32(50),
        "SP_Alarm_Mask" => Variant::UInt16(0xFFFF),
        "SP_Priority" => Variant::Byte(3),
        "SP_Energy_Offset_Wh" => Variant::Int64(0),
        "SP_Maintenance_Due" => Variant::DateTime(Box::new(DateTime::now())),
        "Meteo/Ambient_Temp_C" => Variant::Float(15.0),
        "Meteo/Module_Temp_C" => Variant::Float(15.0),
        _ => t.sim_type.zero(),
    };
    match t.array_len {
        Some(n) => vec_variant(t.sim_type, vec![scalar; n]),
        None => scalar,
    }
}

/// Builds an array Variant of `ty` elements.
pub(crate) fn vec_variant(ty: SimType, values: Vec<Variant>) -> Variant {
    let scalar_type = ty
        .zero()
        .scalar_type_id()
        .unwrap_or(opcua::types::VariantScalarTypeId::Boolean);
    match opcua::types::Array::new(scalar_type, values) {
        Ok(a) => Variant::Array(Box::new(a)),
        Err(_) => Variant::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_leave_room_for_elements() {
        let tags = all_tags(3);
        let mut ids = std::collections::BTreeSet::new();
        for t in &tags {
            assert!(ids.insert(t.id), "duplicate id {}", t.id);
            for i in 0..t.array_len.unwrap_or(0) {
                assert!(ids.insert(t.element_id(i)), "element id clash {}", t.name);
            }
        }
        assert!(!ids.contains(&ROOT_ID));
        assert_eq!(tags.last().map(|t| t.name.as_str()), Some("Load/T00002"));
    }

    #[test]
    fn initial_values_have_the_declared_type() {
        for t in standard_tags() {
            let v = initial_value(&t);
            assert_eq!(
                v.scalar_type_id(),
                t.sim_type.zero().scalar_type_id(),
                "{}",
                t.name
            );
            assert_eq!(v.is_array(), t.array_len.is_some(), "{}", t.name);
        }
    }
}

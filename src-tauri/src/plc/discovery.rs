//! Discovery: browse everything below a root node and describe each variable as a tag.
//!
//! Shared by the engine (on every (re)connect) and `stator discover`, so the two can never
//! disagree about names, types or writability. Every request is chunked (≤ 1000 nodes per call,
//! fewer when the server says so), because real PLCs and async-opcua's decode limits refuse more.

use std::collections::HashSet;

use opcua::client::Session;
use opcua::types::{
    AttributeId, BrowseDescription, BrowseDirection, BrowseResult, ByteString, DataValue, Error,
    NodeClass, NodeId, NumericRange, QualifiedName, ReadValueId, ReferenceTypeId, StatusCode,
    TimestampsToReturn, VariableId, Variant,
};

use crate::live::TagMeta;

/// Hard upper bound of nodes per service call, whatever the server claims.
pub const MAX_PER_CALL: usize = 1000;
/// Browse no deeper than this below the root (guards against reference cycles and odd servers).
pub const MAX_DEPTH: usize = 16;
/// Requests of one chunked operation in flight at once.
const CONCURRENCY: usize = 4;

/// The server's operation limits, clamped to `1..=MAX_PER_CALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpLimits {
    pub nodes_per_read: usize,
    pub nodes_per_browse: usize,
    pub nodes_per_write: usize,
    pub monitored_items_per_call: usize,
}

impl Default for OpLimits {
    fn default() -> Self {
        Self {
            nodes_per_read: MAX_PER_CALL,
            nodes_per_browse: MAX_PER_CALL,
            nodes_per_write: MAX_PER_CALL,
            monitored_items_per_call: MAX_PER_CALL,
        }
    }
}

fn clamp_limit(v: Option<&DataValue>) -> usize {
    let n = v
        .and_then(|dv| dv.value.as_ref())
        .and_then(|v| match v {
            Variant::UInt32(n) => Some(*n as usize),
            Variant::UInt16(n) => Some(*n as usize),
            Variant::Int32(n) if *n > 0 => Some(*n as usize),
            _ => None,
        })
        .unwrap_or(0);
    if n == 0 {
        MAX_PER_CALL
    } else {
        n.min(MAX_PER_CALL)
    }
}

/// Reads the server's OperationLimits (0 or missing means "no limit" → [`MAX_PER_CALL`]).
pub async fn read_limits(session: &Session) -> OpLimits {
    let ids = [
        VariableId::Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
        VariableId::Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
        VariableId::Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
        VariableId::Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
    ];
    let req: Vec<ReadValueId> = ids.iter().map(|&id| value_id(id.into())).collect();
    match session.read(&req, TimestampsToReturn::Neither, 0.0).await {
        Ok(r) => OpLimits {
            nodes_per_read: clamp_limit(r.first()),
            nodes_per_browse: clamp_limit(r.get(1)),
            nodes_per_write: clamp_limit(r.get(2)),
            monitored_items_per_call: clamp_limit(r.get(3)),
        },
        Err(_) => OpLimits::default(),
    }
}

/// One discovered tag: what the cache shows plus the parsed NodeIds the engine needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredTag {
    pub meta: TagMeta,
    pub node: NodeId,
    /// Element children `[0]`, `[1]`, … in index order (empty when the PLC exposes none).
    pub elements: Vec<NodeId>,
    /// The value, when discovery was asked to read it (`stator discover`).
    pub value: Option<DataValue>,
}

fn value_id(node: NodeId) -> ReadValueId {
    attr_id(node, AttributeId::Value)
}

fn attr_id(node: NodeId, attr: AttributeId) -> ReadValueId {
    ReadValueId {
        node_id: node,
        attribute_id: attr as u32,
        index_range: NumericRange::None,
        data_encoding: QualifiedName::null(),
    }
}

/// `[3]` → `Some(3)`: the browse name S7 gives to array element children.
pub fn element_index(browse_name: &str) -> Option<u32> {
    let inner = browse_name.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.parse().ok()
}

/// The built-in type name of a DataType NodeId (`i=4` → `Int16`); well-known subtypes map to
/// their base (`UtcTime` → `DateTime`); other types keep their NodeId text.
pub fn data_type_name(dt: &NodeId) -> String {
    if dt.namespace == 0 {
        if let Some(n) = dt.as_u32() {
            let name = match n {
                1 => "Boolean",
                2 => "SByte",
                3 => "Byte",
                4 => "Int16",
                5 => "UInt16",
                6 => "Int32",
                7 => "UInt32",
                8 => "Int64",
                9 => "UInt64",
                10 => "Float",
                11 => "Double",
                12 => "String",
                13 => "DateTime",
                14 => "Guid",
                15 => "ByteString",
                16 => "XmlElement",
                17 => "NodeId",
                18 => "ExpandedNodeId",
                19 => "StatusCode",
                20 => "QualifiedName",
                21 => "LocalizedText",
                22 => "Structure",
                23 => "DataValue",
                24 => "BaseDataType",
                25 => "DiagnosticInfo",
                26 => "Number",
                27 => "Integer",
                28 => "UInteger",
                29 => "Enumeration",
                288 | 289 => "UInt32",
                290 => "Double",
                294 => "DateTime",
                295 => "String",
                _ => "",
            };
            if !name.is_empty() {
                return name.to_string();
            }
            if let Ok(id) = dt.as_data_type_id() {
                return format!("{id:?}");
            }
        }
    }
    dt.to_string()
}

/// Browses all forward hierarchical references of `nodes` (chunked, following continuation
/// points), returning the references per input node in input order.
async fn browse_all(
    session: &Session,
    nodes: &[NodeId],
    limits: &OpLimits,
) -> Result<Vec<Vec<opcua::types::ReferenceDescription>>, Error> {
    let chunk = limits.nodes_per_browse.clamp(1, MAX_PER_CALL);
    let chunks: Vec<&[NodeId]> = nodes.chunks(chunk).collect();
    let mut out = Vec::with_capacity(nodes.len());
    for group in chunks.chunks(CONCURRENCY) {
        let mut futs = Vec::with_capacity(group.len());
        for c in group {
            futs.push(browse_chunk(session, c));
        }
        for r in futures::future::try_join_all(futs).await? {
            out.extend(r);
        }
    }
    Ok(out)
}

async fn browse_chunk(
    session: &Session,
    nodes: &[NodeId],
) -> Result<Vec<Vec<opcua::types::ReferenceDescription>>, Error> {
    let descs: Vec<BrowseDescription> = nodes
        .iter()
        .map(|n| BrowseDescription {
            node_id: n.clone(),
            browse_direction: BrowseDirection::Forward,
            reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
            include_subtypes: true,
            node_class_mask: NodeClass::Object as u32 | NodeClass::Variable as u32,
            result_mask: 0x3f,
        })
        .collect();
    let results = session.browse(&descs, 1000, None).await?;
    let mut out = Vec::with_capacity(nodes.len());
    let mut pending: Vec<(usize, ByteString)> = Vec::new();
    for (i, r) in results.into_iter().enumerate().take(nodes.len()) {
        let BrowseResult {
            status_code,
            continuation_point,
            references,
        } = r;
        // A node that cannot be browsed (gone, no access) just has no children.
        out.push(if status_code.is_good() {
            references.unwrap_or_default()
        } else {
            Vec::new()
        });
        if !continuation_point.is_null() {
            pending.push((i, continuation_point));
        }
    }
    out.resize_with(nodes.len(), Vec::new);
    // Follow continuation points; bounded so a misbehaving server cannot loop us forever.
    let mut rounds = 0;
    while !pending.is_empty() && rounds < 10_000 {
        rounds += 1;
        let cps: Vec<ByteString> = pending.iter().map(|(_, c)| c.clone()).collect();
        let next = session.browse_next(false, &cps).await?;
        let mut still = Vec::new();
        for ((i, _), r) in pending.iter().zip(next) {
            if r.status_code.is_good() {
                out[*i].extend(r.references.unwrap_or_default());
                if !r.continuation_point.is_null() {
                    still.push((*i, r.continuation_point));
                }
            }
        }
        pending = still;
    }
    Ok(out)
}

/// Reads many attributes, chunked by the server's MaxNodesPerRead, a few requests in flight.
pub async fn read_many(
    session: &Session,
    ids: Vec<ReadValueId>,
    limits: &OpLimits,
    timestamps: TimestampsToReturn,
) -> Result<Vec<DataValue>, Error> {
    let chunk = limits.nodes_per_read.clamp(1, MAX_PER_CALL);
    let chunks: Vec<&[ReadValueId]> = ids.chunks(chunk).collect();
    let mut out = Vec::with_capacity(ids.len());
    for group in chunks.chunks(CONCURRENCY) {
        let mut futs = Vec::with_capacity(group.len());
        for c in group {
            futs.push(read_chunk(session, c, timestamps));
        }
        for r in futures::future::try_join_all(futs).await? {
            out.extend(r);
        }
    }
    Ok(out)
}

async fn read_chunk(
    session: &Session,
    ids: &[ReadValueId],
    timestamps: TimestampsToReturn,
) -> Result<Vec<DataValue>, Error> {
    let n = ids.len();
    let mut r = session.read(ids, timestamps, 0.0).await?;
    // A short answer must not shift the values of later nodes.
    r.resize_with(n, || DataValue {
        status: Some(StatusCode::BadUnexpectedError),
        ..DataValue::null()
    });
    r.truncate(n);
    Ok(r)
}

/// Reads the Value of each node (bulk, chunked), with source and server timestamps.
pub async fn read_values(
    session: &Session,
    nodes: &[NodeId],
    limits: &OpLimits,
) -> Result<Vec<DataValue>, Error> {
    read_many(
        session,
        nodes.iter().cloned().map(value_id).collect(),
        limits,
        TimestampsToReturn::Both,
    )
    .await
}

struct Pending {
    path: String,
    node: NodeId,
    elements: Vec<(u32, NodeId)>,
}

/// Browses everything below `root` and describes each variable. A variable whose children are
/// named `[0]`, `[1]`, … is one tag (array value) with those children as `elements`.
/// `with_values` also reads each tag's current value.
pub async fn discover(
    session: &Session,
    root: &NodeId,
    limits: &OpLimits,
    with_values: bool,
) -> Result<Vec<DiscoveredTag>, Error> {
    // A missing root is an error, not an empty plant.
    let root_class = session
        .read(
            &[attr_id(root.clone(), AttributeId::NodeClass)],
            TimestampsToReturn::Neither,
            0.0,
        )
        .await?;
    if let Some(status) = root_class
        .first()
        .and_then(|dv| dv.status)
        .filter(|s| !s.is_good())
    {
        return Err(Error::new(
            status,
            format!("the root node {root} does not exist on the PLC"),
        ));
    }
    let mut visited: HashSet<NodeId> = HashSet::new();
    visited.insert(root.clone());
    let mut tags: Vec<Pending> = Vec::new();
    // (node, path prefix, Some(tag index) when the node is a variable)
    let mut frontier: Vec<(NodeId, String, Option<usize>)> =
        vec![(root.clone(), String::new(), None)];
    let has_property: NodeId = ReferenceTypeId::HasProperty.into();
    for _depth in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let nodes: Vec<NodeId> = frontier.iter().map(|(n, _, _)| n.clone()).collect();
        let refs = browse_all(session, &nodes, limits).await?;
        let mut next = Vec::new();
        for ((_, prefix, parent_tag), refs) in frontier.iter().zip(refs) {
            for r in refs {
                if r.node_id.server_index != 0 || r.reference_type_id == has_property {
                    continue;
                }
                let node = r.node_id.node_id;
                if !visited.insert(node.clone()) {
                    continue;
                }
                let name = r.browse_name.name.as_ref().to_string();
                if name.is_empty() {
                    continue;
                }
                if let (Some(t), Some(idx)) = (parent_tag, element_index(&name)) {
                    if r.node_class == NodeClass::Variable {
                        tags[*t].elements.push((idx, node));
                        continue;
                    }
                }
                let path = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                match r.node_class {
                    NodeClass::Variable => {
                        tags.push(Pending {
                            path: path.clone(),
                            node: node.clone(),
                            elements: Vec::new(),
                        });
                        next.push((node, path, Some(tags.len() - 1)));
                    }
                    NodeClass::Object => next.push((node, path, None)),
                    _ => {}
                }
            }
        }
        frontier = next;
    }

    const ATTRS: [AttributeId; 5] = [
        AttributeId::DataType,
        AttributeId::ValueRank,
        AttributeId::ArrayDimensions,
        AttributeId::AccessLevel,
        AttributeId::UserAccessLevel,
    ];
    let mut ids = Vec::with_capacity(tags.len() * 6);
    for t in &tags {
        for a in ATTRS {
            ids.push(attr_id(t.node.clone(), a));
        }
    }
    let attrs = read_many(session, ids, limits, TimestampsToReturn::Neither).await?;
    let values = if with_values {
        Some(
            read_values(
                session,
                &tags.iter().map(|t| t.node.clone()).collect::<Vec<_>>(),
                limits,
            )
            .await?,
        )
    } else {
        None
    };

    let mut out = Vec::with_capacity(tags.len());
    for (i, mut t) in tags.into_iter().enumerate() {
        let a = &attrs[i * ATTRS.len()..(i + 1) * ATTRS.len()];
        let data_type = match a[0].value.as_ref() {
            Some(Variant::NodeId(n)) => data_type_name(n),
            _ => "BaseDataType".to_string(),
        };
        let value_rank = match a[1].value.as_ref() {
            Some(Variant::Int32(r)) => *r,
            _ => -1,
        };
        let dims: Vec<u32> = match a[2].value.as_ref() {
            Some(Variant::Array(arr)) => arr
                .values
                .iter()
                .filter_map(|v| match v {
                    Variant::UInt32(d) => Some(*d),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let byte = |dv: &DataValue| match dv.value.as_ref() {
            Some(Variant::Byte(b)) => *b,
            Some(Variant::UInt32(b)) => *b as u8,
            _ => 0,
        };
        const CURRENT_WRITE: u8 = 0x02;
        let writable = byte(&a[3]) & CURRENT_WRITE != 0 && byte(&a[4]) & CURRENT_WRITE != 0;
        t.elements.sort_by_key(|(i, _)| *i);
        // Only a contiguous [0]..[n-1] set is an element list; anything else is ignored.
        let contiguous = t
            .elements
            .iter()
            .enumerate()
            .all(|(k, (i, _))| *i as usize == k);
        if !contiguous {
            t.elements.clear();
        }
        let value = values.as_ref().and_then(|v| v.get(i).cloned());
        let array_size = if value_rank >= 1 || !t.elements.is_empty() {
            dims.first()
                .copied()
                .filter(|d| *d > 0)
                .or_else(|| (!t.elements.is_empty()).then_some(t.elements.len() as u32))
                .or_else(|| match value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Variant::Array(a)) => Some(a.values.len() as u32),
                    _ => None,
                })
                .or(Some(0))
        } else {
            None
        };
        let elements: Vec<NodeId> = t.elements.into_iter().map(|(_, n)| n).collect();
        out.push(DiscoveredTag {
            meta: TagMeta {
                name: t.path,
                node_id: t.node.to_string(),
                data_type,
                array_size,
                writable,
                element_node_ids: elements.iter().map(|n| n.to_string()).collect(),
            },
            node: t.node,
            elements,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names() {
        assert_eq!(element_index("[0]"), Some(0));
        assert_eq!(element_index("[17]"), Some(17));
        assert_eq!(element_index("[]"), None);
        assert_eq!(element_index("[-1]"), None);
        assert_eq!(element_index("[1"), None);
        assert_eq!(element_index("x[1]"), None);
        assert_eq!(element_index("[99999999999]"), None);
    }

    #[test]
    fn type_names() {
        assert_eq!(data_type_name(&NodeId::new(0, 1u32)), "Boolean");
        assert_eq!(data_type_name(&NodeId::new(0, 4u32)), "Int16");
        assert_eq!(data_type_name(&NodeId::new(0, 10u32)), "Float");
        assert_eq!(data_type_name(&NodeId::new(0, 294u32)), "DateTime");
        assert_eq!(data_type_name(&NodeId::new(3, 3002u32)), "ns=3;i=3002");
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(clamp_limit(None), MAX_PER_CALL);
        let dv = |v: u32| DataValue::value_only(Variant::UInt32(v));
        assert_eq!(clamp_limit(Some(&dv(0))), MAX_PER_CALL);
        assert_eq!(clamp_limit(Some(&dv(200))), 200);
        assert_eq!(clamp_limit(Some(&dv(50_000))), MAX_PER_CALL);
    }
}

//! The simulator's node manager: builds the S7-like address space under `ns=4;i=2` and
//! applies writes like an S7 does (strict types, fixed array lengths, String[254]), keeping
//! array variables and their element children `[0]`, `[1]`, … in sync both ways.
//!
//! Writes from clients are applied inside the node manager while it holds the address-space
//! lock, so the sync happens in the same critical section and a read right after the write
//! already sees both sides. Nothing here calls back into the node manager (that would
//! deadlock); the process model (`process.rs`) uses the same [`apply`] under its own lock.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use opcua::server::address_space::{
    AccessLevel, AddressSpace, NodeType, ObjectBuilder, Variable, VariableBuilder,
};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{
    InMemoryNodeManager, InMemoryNodeManagerBuilder, InMemoryNodeManagerImpl,
};
use opcua::server::node_manager::{NodeManagerBuilder, RequestContext, ServerContext, WriteNode};
use opcua::server::SubscriptionCache;
use opcua::sync::RwLock;
use opcua::types::{
    AttributeId, DateTime, NodeId, NumericRange, ObjectId, ObjectTypeId, QualifiedName, StatusCode,
    TimestampsToReturn, VariableTypeId, Variant,
};

use super::tags::{
    self, TagInfo, FILLER_NAMESPACES, LOAD_FOLDER_ID, MAX_STRING_LEN, METEO_FOLDER_ID,
    NAMESPACE_URI, NS, ROOT_ID, ROOT_NAME,
};

/// The node manager type the server holds for our namespace.
pub(crate) type SimNodeManager = InMemoryNodeManager<SimNodeManagerImpl>;

/// Which nodes mirror each other: element child ↔ (array, index).
#[derive(Debug, Default)]
pub(crate) struct Links {
    element_of: HashMap<NodeId, (NodeId, usize)>,
    elements: HashMap<NodeId, Vec<NodeId>>,
}

impl Links {
    /// Builds the links of `tags` (empty when arrays have no element children).
    pub(crate) fn new(tags: &[TagInfo], array_elements: bool) -> Links {
        let mut links = Links::default();
        if !array_elements {
            return links;
        }
        for t in tags {
            if let Some(n) = t.array_len {
                let ids: Vec<NodeId> = (0..n).map(|i| NodeId::new(NS, t.element_id(i))).collect();
                for (i, id) in ids.iter().enumerate() {
                    links.element_of.insert(id.clone(), (t.node_id(), i));
                }
                links.elements.insert(t.node_id(), ids);
            }
        }
        links
    }
}

/// Our [`InMemoryNodeManagerImpl`]: only `write` differs from the defaults.
pub(crate) struct SimNodeManagerImpl {
    namespaces: Vec<NamespaceMetadata>,
    links: Arc<Links>,
}

/// The node manager builder for one park: registers the namespaces so ours is index 4 and
/// populates the address space.
pub(crate) fn builder(
    tags: Arc<Vec<TagInfo>>,
    links: Arc<Links>,
    array_elements: bool,
) -> impl NodeManagerBuilder {
    InMemoryNodeManagerBuilder::new(
        move |context: ServerContext, address_space: &mut AddressSpace| {
            let mut namespaces = Vec::new();
            let our_index = {
                let mut type_tree = context.type_tree.write();
                let map = type_tree.namespaces_mut();
                let mut filler = FILLER_NAMESPACES.iter().map(|s| s.to_string());
                let mut extra = 0;
                while map.known_namespaces().len() < NS as usize {
                    let uri = filler.next().unwrap_or_else(|| {
                        extra += 1;
                        format!("urn:stator:sim:reserved:{extra}")
                    });
                    let idx = map.add_namespace(&uri);
                    namespaces.push((uri, idx));
                }
                let idx = map.add_namespace(NAMESPACE_URI);
                namespaces.push((NAMESPACE_URI.to_string(), idx));
                idx
            };
            for (uri, idx) in &namespaces {
                address_space.add_namespace(uri, *idx);
            }
            // Our NodeIds are fixed at ns=4; start() reports a mismatch as an error.
            if our_index == NS {
                populate(address_space, &tags, array_elements);
            }
            SimNodeManagerImpl {
                namespaces: namespaces
                    .into_iter()
                    .map(|(uri, idx)| NamespaceMetadata {
                        namespace_uri: uri,
                        namespace_index: idx,
                        ..Default::default()
                    })
                    .collect(),
                links,
            }
        },
    )
}

fn access(writable: bool) -> AccessLevel {
    if writable {
        AccessLevel::CURRENT_READ | AccessLevel::CURRENT_WRITE
    } else {
        AccessLevel::CURRENT_READ
    }
}

fn qn(name: &str) -> QualifiedName {
    QualifiedName::new(NS, name)
}

/// Inserts the root object, the folders, every tag and (optionally) the element children.
fn populate(address_space: &mut AddressSpace, tags: &[TagInfo], array_elements: bool) {
    let root = NodeId::new(NS, ROOT_ID);
    ObjectBuilder::new(&root, qn(ROOT_NAME), ROOT_NAME)
        .description("Stator built-in S7-1200-like server interface")
        .organized_by(ObjectId::ObjectsFolder)
        .has_type_definition(ObjectTypeId::BaseObjectType)
        .insert(address_space);
    let meteo = NodeId::new(NS, METEO_FOLDER_ID);
    let load = NodeId::new(NS, LOAD_FOLDER_ID);
    let mut folders_done = (false, false);
    for t in tags {
        let (parent, leaf) = match t.name.split_once('/') {
            Some(("Meteo", leaf)) => {
                if !folders_done.0 {
                    folder(address_space, &meteo, "Meteo", &root);
                    folders_done.0 = true;
                }
                (&meteo, leaf)
            }
            Some(("Load", leaf)) => {
                if !folders_done.1 {
                    folder(address_space, &load, "Load", &root);
                    folders_done.1 = true;
                }
                (&load, leaf)
            }
            _ => (&root, t.name.as_str()),
        };
        let id = t.node_id();
        let mut b = VariableBuilder::new(&id, qn(leaf), leaf)
            .data_type(t.sim_type.data_type_id())
            .value(tags::initial_value(t))
            .access_level(access(t.writable))
            .user_access_level(access(t.writable))
            .minimum_sampling_interval(0.0)
            .has_type_definition(VariableTypeId::BaseDataVariableType);
        b = match t.array_len {
            Some(n) => b.value_rank(1).array_dimensions(&[n as u32]),
            None => b.value_rank(-1),
        };
        // Folders organize their variables; the root object has them as components.
        b = if parent == &root {
            b.component_of(parent.clone())
        } else {
            b.organized_by(parent.clone())
        };
        b.insert(address_space);

        if let (Some(n), true) = (t.array_len, array_elements) {
            let initial = tags::initial_value(t);
            let values = initial.as_array().cloned().unwrap_or_default();
            for i in 0..n {
                let name = format!("[{i}]");
                let eid = NodeId::new(NS, t.element_id(i));
                VariableBuilder::new(&eid, qn(&name), name.as_str())
                    .data_type(t.sim_type.data_type_id())
                    .value(values.get(i).cloned().unwrap_or_else(|| t.sim_type.zero()))
                    .access_level(access(t.writable))
                    .user_access_level(access(t.writable))
                    .minimum_sampling_interval(0.0)
                    .value_rank(-1)
                    .has_type_definition(VariableTypeId::BaseDataVariableType)
                    .component_of(id.clone())
                    .insert(address_space);
            }
        }
    }
}

fn folder(address_space: &mut AddressSpace, id: &NodeId, name: &str, parent: &NodeId) {
    ObjectBuilder::new(id, qn(name), name)
        .is_folder()
        .organized_by(parent.clone())
        .insert(address_space);
}

#[async_trait]
impl InMemoryNodeManagerImpl for SimNodeManagerImpl {
    async fn init(&self, _address_space: &mut AddressSpace, _context: ServerContext) {}

    fn name(&self) -> &str {
        "stator-sim"
    }

    fn namespaces(&self) -> Vec<NamespaceMetadata> {
        self.namespaces.clone()
    }

    async fn write(
        &self,
        context: &RequestContext,
        address_space: &RwLock<AddressSpace>,
        nodes_to_write: &mut [&mut WriteNode],
    ) -> Result<(), StatusCode> {
        let mut space = address_space.write();
        let mut changed = Vec::new();
        {
            let type_tree = context.type_tree.read();
            for write in nodes_to_write.iter_mut() {
                let wv = write.value();
                let status = match space.validate_node_write(context, wv, &*type_tree) {
                    Err(e) => e,
                    Ok(_) if wv.attribute_id != AttributeId::Value => StatusCode::BadNotWritable,
                    Ok(_) => match &wv.value.value {
                        None => StatusCode::BadTypeMismatch,
                        Some(v) => match apply(
                            &mut space,
                            &self.links,
                            &wv.node_id,
                            &wv.index_range,
                            v.clone(),
                            &mut changed,
                        ) {
                            Ok(()) => StatusCode::Good,
                            Err(e) => e,
                        },
                    },
                };
                write.set_status(status);
            }
        }
        notify(&space, &context.subscriptions, &changed);
        Ok(())
    }
}

fn variable_mut<'a>(
    space: &'a mut AddressSpace,
    id: &NodeId,
) -> Result<&'a mut Variable, StatusCode> {
    match space.find_mut(id) {
        Some(NodeType::Variable(v)) => Ok(v),
        Some(_) => Err(StatusCode::BadNotWritable),
        None => Err(StatusCode::BadNodeIdUnknown),
    }
}

/// The current value of variable `id` (None when unknown or not a variable).
pub(crate) fn current(space: &AddressSpace, id: &NodeId) -> Option<Variant> {
    match space.find(id) {
        Some(NodeType::Variable(v)) => {
            v.value(
                TimestampsToReturn::Neither,
                &NumericRange::None,
                &Default::default(),
                0.0,
            )
            .value
        }
        _ => None,
    }
}

fn has_type(v: &Variant, data_type: &NodeId) -> bool {
    v.data_type().is_some_and(|d| &d.node_id == data_type)
}

fn string_ok(v: &Variant) -> bool {
    match v {
        Variant::String(s) => s
            .value()
            .as_ref()
            .is_none_or(|s| s.chars().count() <= MAX_STRING_LEN),
        _ => true,
    }
}

/// Checks a value like an S7 does: exact DataType, scalar vs array, the array's fixed length,
/// String[254]. Returns the OPC UA status a PLC would answer.
fn check_value(var: &Variable, value: &Variant, range: &NumericRange) -> Result<(), StatusCode> {
    let data_type = var.data_type();
    let is_array = var.value_rank() >= 1;
    match value {
        Variant::Array(a) => {
            if !is_array || a.values.is_empty() {
                return Err(StatusCode::BadTypeMismatch);
            }
            if !a.values.iter().all(|v| has_type(v, &data_type)) {
                return Err(StatusCode::BadTypeMismatch);
            }
            if !a.values.iter().all(string_ok) {
                return Err(StatusCode::BadOutOfRange);
            }
            let len = var
                .array_dimensions()
                .and_then(|d| d.first().copied())
                .unwrap_or(0) as usize;
            match range {
                NumericRange::None if a.values.len() != len => Err(StatusCode::BadTypeMismatch),
                NumericRange::None => Ok(()),
                NumericRange::Index(i) if (*i as usize) < len && a.values.len() == 1 => Ok(()),
                NumericRange::Range(lo, hi)
                    if lo < hi
                        && (*hi as usize) < len
                        && a.values.len() == (hi - lo + 1) as usize =>
                {
                    Ok(())
                }
                NumericRange::Index(_) | NumericRange::Range(..) => {
                    Err(StatusCode::BadIndexRangeNoData)
                }
                _ => Err(StatusCode::BadIndexRangeInvalid),
            }
        }
        Variant::Empty => Err(StatusCode::BadTypeMismatch),
        scalar => {
            if is_array || !has_type(scalar, &data_type) {
                return Err(StatusCode::BadTypeMismatch);
            }
            if range.has_range() {
                return Err(StatusCode::BadIndexRangeInvalid);
            }
            if !string_ok(scalar) {
                return Err(StatusCode::BadOutOfRange);
            }
            Ok(())
        }
    }
}

/// Writes `value` (with an optional index range) to variable `id` and mirrors it into the
/// array / element children; every node whose value changed is appended to `changed`.
/// Stamped now (see [`apply_at`]).
pub(crate) fn apply(
    space: &mut AddressSpace,
    links: &Links,
    id: &NodeId,
    range: &NumericRange,
    value: Variant,
    changed: &mut Vec<NodeId>,
) -> Result<(), StatusCode> {
    apply_at(space, links, id, range, value, &DateTime::now(), changed)
}

/// [`apply`] with the source (and server) timestamp `now`: the scan loop stamps every value of
/// one step with the step's time.
pub(crate) fn apply_at(
    space: &mut AddressSpace,
    links: &Links,
    id: &NodeId,
    range: &NumericRange,
    value: Variant,
    now: &DateTime,
    changed: &mut Vec<NodeId>,
) -> Result<(), StatusCode> {
    let now = *now;
    {
        let var = variable_mut(space, id)?;
        check_value(var, &value, range)?;
        var.set_value_range(value, range, StatusCode::Good, &now, &now)?;
    }
    changed.push(id.clone());
    if let Some((array_id, index)) = links.element_of.get(id) {
        let elem = current(space, id).unwrap_or_default();
        let Some(Variant::Array(mut arr)) = current(space, array_id) else {
            return Ok(());
        };
        if let Some(slot) = arr.values.get_mut(*index) {
            *slot = elem;
        }
        variable_mut(space, array_id)?.set_value_direct(
            Variant::Array(arr),
            StatusCode::Good,
            &now,
            &now,
        )?;
        changed.push(array_id.clone());
    } else if let Some(elements) = links.elements.get(id) {
        let Some(Variant::Array(arr)) = current(space, id) else {
            return Ok(());
        };
        for (eid, v) in elements.iter().zip(arr.values.iter()) {
            let var = variable_mut(space, eid)?;
            let old = var
                .value(
                    TimestampsToReturn::Neither,
                    &NumericRange::None,
                    &Default::default(),
                    0.0,
                )
                .value;
            if old.as_ref() != Some(v) {
                var.set_value_direct(v.clone(), StatusCode::Good, &now, &now)?;
                changed.push(eid.clone());
            }
        }
    }
    Ok(())
}

/// Tells the monitored items of `changed` nodes about their new values.
pub(crate) fn notify(space: &AddressSpace, subscriptions: &SubscriptionCache, changed: &[NodeId]) {
    if changed.is_empty() {
        return;
    }
    subscriptions.maybe_notify(
        changed.iter().map(|id| (id, AttributeId::Value)),
        |id, attribute, range, encoding| {
            space.find(id)?.as_node().get_attribute(
                TimestampsToReturn::Both,
                attribute,
                range,
                encoding,
            )
        },
    );
}

//! A small builder of ONNX graphs over the prost types: nodes with
//! attributes, constant tensors (initializers) and fresh value names.

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// An attribute value of a node.
pub enum Attr {
    /// One integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A string.
    Str(String),
}

/// A graph under construction: nodes in topological order, initializers.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

impl Graph {
    /// Appends a node `op(inputs) -> output` and returns the output's value
    /// name: `name` and a running number, so every name is unique.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        name: &str,
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        self.counter += 1;
        let out = format!("{name}_{}", self.counter);
        let attribute = attrs.into_iter().map(|(n, a)| attribute(n, a)).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        out
    }

    /// Adds an f32 constant `name` of shape `dims` and returns its name.
    pub fn f32_const(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            values.len(),
            "{name}: shape and values disagree"
        );
        self.initializers.push(TensorProto {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds a 1-d int64 constant `name` and returns its name.
    pub fn i64_const(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorProto {
            name: name.to_string(),
            dims: vec![values.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.to_string()
    }

    /// The finished graph with one f32 input and one f32 output; each shape
    /// is given per axis, `None` for the symbolic batch axis "N".
    pub fn finish(
        self,
        name: &str,
        input: (&str, &[Option<usize>]),
        output: (&str, &[Option<usize>]),
        last: &str,
    ) -> GraphProto {
        let mut nodes = self.nodes;
        // The last node writes the graph's output name.
        if let Some(n) = nodes.iter_mut().rev().find(|n| n.output[0] == last) {
            n.output[0] = output.0.to_string();
        }
        GraphProto {
            node: nodes,
            name: name.to_string(),
            initializer: self.initializers,
            input: vec![value_info(input.0, input.1)],
            output: vec![value_info(output.0, output.1)],
            ..Default::default()
        }
    }
}

/// A node attribute from its value.
fn attribute(name: &str, a: Attr) -> AttributeProto {
    let mut p = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match a {
        Attr::Int(i) => {
            p.r#type = AttributeType::Int as i32;
            p.i = i;
        }
        Attr::Ints(v) => {
            p.r#type = AttributeType::Ints as i32;
            p.ints = v;
        }
        Attr::Str(s) => {
            p.r#type = AttributeType::String as i32;
            p.s = s.into_bytes();
        }
    }
    p
}

/// An f32 tensor value's name, type and shape (`None`: the batch axis "N").
fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

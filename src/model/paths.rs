//! Visiting every parameter of a model together with its module path (`layers.0.attn.query.weight`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Something that looks at each float parameter and the path it sits at.
pub trait ParameterVisitor {
    /// Called once per float parameter, in module order.
    fn visit<const D: usize>(&mut self, path: String, param: &Param<Tensor<D>>);
}

/// Runs `visitor` over every float parameter of `module`, handing it each parameter's path.
pub fn visit_parameters<M: Module, V: ParameterVisitor>(module: &M, visitor: &mut V) {
    module.visit(&mut WithPaths {
        path: Vec::new(),
        inner: visitor,
    });
}

/// Tracks the module path for a [`ParameterVisitor`].
struct WithPaths<'a, V> {
    path: Vec<String>,
    inner: &'a mut V,
}

impl<V: ParameterVisitor> ModuleVisitor for WithPaths<'_, V> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit(self.path.join("."), param);
    }
}

// The one list of built-in layers. framework/ does not know them: this file installs
// register_builtin_layers() with set_builtin_layers() while the (shared) library loads,
// and layer_registry() calls it on its first use.
#include "framework/registry.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/feed_forward.hpp"
#include "layers/gelu.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/output_projection.hpp"
#include "layers/relu.hpp"
#include "layers/residual.hpp"
#include "layers/self_attention.hpp"
#include "layers/sequential.hpp"
#include "layers/transformer_block.hpp"

namespace strata {

namespace {

void register_builtin_layers(LayerRegistry& registry) {
  registry.add(make_layer_info<Linear>("Linear"));
  registry.add(make_layer_info<LayerNorm>("LayerNorm"));
  registry.add(make_layer_info<ReLU>("ReLU"));
  registry.add(make_layer_info<GELU>("GELU"));
  registry.add(make_layer_info<Embedding>("Embedding"));
  registry.add(make_layer_info<Dropout>("Dropout"));
  registry.add(make_layer_info<SelfAttention>("SelfAttention"));
  registry.add(make_layer_info<FeedForward>("FeedForward"));
  registry.add(make_layer_info<TransformerBlock>("TransformerBlock"));
  registry.add(make_layer_info<OutputProjection>("OutputProjection"));
  registry.add(make_layer_info<Sequential>("Sequential"));
  registry.add(make_layer_info<Residual>("Residual"));
}

// A constant-initialised registry pointer in framework/ makes the order of this and
// any other static initialiser irrelevant (see set_builtin_layers).
[[maybe_unused]] const bool installed = (set_builtin_layers(&register_builtin_layers), true);

}  // namespace

}  // namespace strata

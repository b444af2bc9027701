// The one list of built-in layers. register_builtin_layers() is called by
// layer_registry() on first use, so a static link cannot drop any of them.
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

}  // namespace strata

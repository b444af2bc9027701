#include "framework/conformance.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "framework/grad_check.hpp"

namespace strata {

std::string ConformanceResult::report() const {
  std::ostringstream out;
  for (const std::string& line : passed) out << "ok: " << line << "\n";
  for (const std::string& line : failed) out << "FAILED: " << line << "\n";
  return out.str();
}

namespace {

const ModelContext kContext{7, 8};

LayerConfig<double> example_config(const LayerInfo& info, Rng& rng) {
  const std::string text = info.example.empty() ? "{}" : info.example;
  const ConfigNode node = ConfigNode::parse(text, info.type + " example");
  const ConfigSection section(node, info.type + " example", info.schema);
  Shape in = info.example_input;
  for (std::size_t i = 0; i + 1 < in.size(); ++i) in[i] = kAnyDim;  // as a model passes it
  if (info.example_ids && !in.empty()) in.back() = kAnyDim;
  return LayerConfig<double>(section, "layer", in, kContext, rng);
}

std::unique_ptr<Layer<double>> build_example(const LayerInfo& info, Rng& rng) {
  return info.make_double(example_config(info, rng));
}

// The memory budget counts the layers after this one through its shape rule, which must
// give what the built layer's output_shape gives.
void check_shape_rule(const LayerInfo& info, const Layer<double>& layer, ConformanceResult& r) {
  if (!info.shape_double) return;
  Rng rng(1);
  const LayerConfig<double> config = example_config(info, rng);
  const Shape from_config = info.shape_double(config);
  const Shape built = layer.output_shape(config.input_shape());
  if (from_config == built)
    r.passed.push_back("config_output_shape " + to_string(from_config) + " is output_shape's");
  else
    r.failed.push_back("config_output_shape says " + to_string(from_config) +
                       " but output_shape gives " + to_string(built) + " for " +
                       to_string(config.input_shape()));
}

Tensor<double> example_input(const LayerInfo& info, std::uint64_t seed) {
  Rng rng(seed);
  const auto& dims = info.example_input;
  Tensor<double> x = Tensor<double>::from_shape(std::vector<std::size_t>(dims.begin(), dims.end()));
  for (double& v : x)
    v = info.example_ids ? double(rng.below(std::uint64_t(kContext.vocab_size))) : rng.normal(0, 1);
  return x;
}

Shape shape_of(const Tensor<double>& t) { return Shape(t.shape().begin(), t.shape().end()); }

bool fits(const Shape& declared, const Shape& real) {
  if (declared.size() != real.size()) return false;
  for (std::size_t i = 0; i < real.size(); ++i)
    if (declared[i] != kAnyDim && declared[i] != real[i]) return false;
  return true;
}

// Output, dx and parameter grads of one forward + backward, optionally releasing every
// buffer the way a chain does.
std::vector<std::vector<double>> run_once(Layer<double>& layer, Tensor<double> x,
                                          const Tensor<double>& dy, bool release) {
  for (Parameter<double>* p : layer.parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0);
  const Tensor<double>& y = layer.forward(x, Mode::eval);
  std::vector<std::vector<double>> out{{y.begin(), y.end()}};
  if (release) {
    layer.release(y);
    if (!layer.keeps_input())
      std::fill(x.begin(), x.end(), std::nan(""));  // its producer reuses it
  }
  const Tensor<double>& dx = layer.backward(dy);
  out.emplace_back(dx.begin(), dx.end());
  if (release) layer.release(dx);
  for (Parameter<double>* p : layer.parameters()) out.emplace_back(p->grad.begin(), p->grad.end());
  return out;
}

void check_released_buffers(Layer<double>& layer, const Tensor<double>& x, ConformanceResult& r) {
  Rng rng(3);
  Tensor<double> dy = Tensor<double>::from_shape(layer.forward(x, Mode::eval).shape());
  for (double& v : dy) v = rng.normal(0, 1);
  const auto kept = run_once(layer, x, dy, false);
  std::vector<std::vector<double>> released;
  {
    const ScopedReleaseThreshold everything(0);
    run_once(layer, x, dy, true);
    released = run_once(layer, x, dy, true);  // the buffers come back after a release
  }
  static const std::string kKept = "every buffer released: same output, dx and gradients";
  static const std::string kChanged =
      "with every buffer released (Layer::release, the input overwritten when "
      "keeps_input() is false) the output, dx or a gradient changed: backward reads a "
      "buffer it said it does not keep (declare it with Retains in the constructor)";
  (released == kept ? r.passed : r.failed).push_back(released == kept ? kKept : kChanged);
}

void check_shapes(const LayerInfo& info, Layer<double>& layer, const Tensor<double>& x,
                  ConformanceResult& r) {
  const Shape real = shape_of(layer.forward(x, Mode::eval));
  Shape any = info.example_input;
  for (std::size_t i = 0; i + 1 < any.size(); ++i) any[i] = kAnyDim;
  const Shape declared_any = layer.output_shape(any);
  const Shape declared = layer.output_shape(info.example_input);
  if (declared == real && fits(declared_any, real))
    r.passed.push_back("output_shape " + to_string(declared_any) + " fits forward's " +
                       to_string(real));
  else
    r.failed.push_back("output_shape says " + to_string(declared) + " (" + to_string(declared_any) +
                       " for " + to_string(any) + ") but forward gives " + to_string(real));
}

void check_gradients_of(const LayerInfo& info, Layer<double>& layer, const Tensor<double>& x,
                        double tolerance, ConformanceResult& r) {
  GradCheckOptions options;
  options.check_input = !info.example_ids;
  const GradCheckResult g = check_gradients(layer, x, options);
  std::ostringstream line;
  line << "gradients (input, parameters, backward twice = 2x): max relative error " << g.max_error()
       << " (tolerance " << tolerance << ")";
  if (g.max_error() <= tolerance) {
    r.passed.push_back(line.str());
    return;
  }
  std::string detail = g.report();
  while (!detail.empty() && detail.back() == '\n') detail.pop_back();
  for (char& c : detail)
    if (c == '\n') c = ';';
  r.failed.push_back(line.str() + ": " + detail);
}

}  // namespace

ConformanceResult check_layer_conformance(const LayerInfo& info, double tolerance) {
  ConformanceResult r;
  if (info.example_input.empty()) {
    r.failed.push_back(info.type +
                       " declares no example: give it `static constexpr const char* "
                       "kExample` and `static Shape example_input()`");
    return r;
  }
  Rng rng(1);
  std::unique_ptr<Layer<double>> layer;
  try {
    layer = build_example(info, rng);
  } catch (const std::exception& e) {
    r.failed.push_back("building the example " + info.example + ": " + e.what());
    return r;
  }
  if (layer->type() == info.type)
    r.passed.push_back("type() is \"" + info.type + "\"");
  else
    r.failed.push_back("type() is \"" + std::string(layer->type()) + "\", registered as \"" +
                       info.type + "\"");
  const Tensor<double> x = example_input(info, 2);
  try {
    check_shapes(info, *layer, x, r);
    check_shape_rule(info, *layer, r);
    check_gradients_of(info, *layer, x, tolerance, r);
    check_released_buffers(*layer, x, r);
  } catch (const std::exception& e) {
    r.failed.push_back(std::string("threw: ") + e.what());
  }
  return r;
}

}  // namespace strata

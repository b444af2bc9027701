#include "framework/init.hpp"

#include <cmath>

namespace strata {

std::vector<std::string> init_names() { return {"he", "xavier", "zeros"}; }

Init parse_init(const std::string& name) {
  return name == "xavier" ? Init::xavier : name == "zeros" ? Init::zeros : Init::he;
}

double init_std(Init init, std::size_t fan_in, std::size_t fan_out) {
  switch (init) {
    case Init::he:
      return std::sqrt(2.0 / double(fan_in));
    case Init::xavier:
      return std::sqrt(2.0 / double(fan_in + fan_out));
    case Init::zeros:
      return 0.0;
  }
  return 0.0;
}

template <class T>
void fill_normal(Tensor<T>& t, double std, Rng& rng) {
  for (auto& v : t) v = static_cast<T>(rng.normal(0.0, std));
}

template void fill_normal<float>(Tensor<float>&, double, Rng&);
template void fill_normal<double>(Tensor<double>&, double, Rng&);

}  // namespace strata

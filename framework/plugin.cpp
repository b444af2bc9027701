#include "framework/plugin.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <set>

#include "framework/errors.hpp"
#include "framework/registry.hpp"
#include "framework/text.hpp"

namespace strata {

namespace {
std::set<std::string>& loaded_set() {
  static std::set<std::string> loaded;
  return loaded;
}
}  // namespace

std::vector<std::string> loaded_plugins() { return {loaded_set().begin(), loaded_set().end()}; }

int load_plugin(const std::string& path) {
  std::set<std::string>& loaded = loaded_set();
  std::error_code ec;
  const std::string canonical = std::filesystem::canonical(path, ec).string();
  if (ec) {
    std::string where;
    if (std::filesystem::path(path).is_relative())  // the common surprise: say where we looked
      where = " (a relative path is read from the working directory, " +
              std::filesystem::current_path().string() + ")";
    throw Error(path + ": plugin library not found" + where);
  }
  if (loaded.count(canonical)) return 0;
  // Built-ins first, so a clash is reported against them (the optimizer registry
  // registers its own when a library first adds to it).
  layer_registry();
  RegistrationLog& log = registration_log();
  const int before = log.registered;
  const std::size_t errors_before = log.errors.size();
  log.origin = canonical;  // recorded as each type's origin while the library loads
  void* handle = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_GLOBAL);
  log.origin.clear();
  if (!handle) {
    const char* why = ::dlerror();
    throw Error(path + ": cannot load plugin (" + std::string(why ? why : "unknown error") + ")");
  }
  loaded.insert(canonical);
  if (log.errors.size() > errors_before) {
    std::vector<std::string> errors(log.errors.begin() + long(errors_before), log.errors.end());
    throw Error(path + ": " + join(errors, "; "));
  }
  const int registered = log.registered - before;
  if (registered == 0)
    throw Error(path +
                ": the library registered no layers, optimizers or tokenizers (use "
                "STRATA_REGISTER_LAYER, STRATA_REGISTER_OPTIMIZER or STRATA_REGISTER_TOKENIZER)");
  return registered;
}

void load_plugins(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) load_plugin(path);
}

}  // namespace strata

#include "models/checkpoint.hpp"

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "framework/errors.hpp"
#include "framework/files.hpp"

namespace strata {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kFormat = "strata-checkpoint-1";
}

std::string checkpoint_directory(const std::string& run_dir) {
  return (fs::path(run_dir) / "checkpoint").string();
}

void save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint) {
  make_directories(run_dir);
  const std::string target = checkpoint_directory(run_dir);
  const std::string fresh = target + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(fresh, ec);
  make_directories(fresh);

  // One file's bytes at a time (an initializer list of all four held each archive
  // twice: its elements are copied, not moved), for a lower peak memory.
  const std::pair<const char*, std::function<std::string()>> files[] = {
      {"config.yaml", [&] { return checkpoint.config_text; }},
      {"vocab.txt", [&] { return checkpoint.vocabulary; }},
      {"model.npz", [&] { return encode_npz(checkpoint.parameters); }},
      {"optimizer.npz", [&] { return encode_npz(checkpoint.optimizer_state); }},
  };
  json manifest;
  manifest["format"] = kFormat;
  manifest["config_file"] = checkpoint.config_file;
  manifest["optimizer_steps"] = checkpoint.optimizer_steps;
  manifest["seed"] = checkpoint.seed;
  manifest["data_overrides"] = checkpoint.data_overrides;
  const TrainingPosition& p = checkpoint.position;
  manifest["position"] = {{"step", p.step},
                          {"phase", p.phase},
                          {"epoch", p.epoch},
                          {"next_batch", p.next_batch},
                          {"epoch_rng", p.epoch_rng},
                          {"rng", p.rng},
                          {"epoch_loss_sum", p.epoch_loss_sum},
                          {"epoch_sequences", p.epoch_sequences},
                          {"epoch_tokens", p.epoch_tokens}};
  for (const auto& [name, produce] : files) {
    const std::string bytes = produce();
    write_file_atomic((fs::path(fresh) / name).string(), bytes);
    manifest["files"][name] = {{"bytes", bytes.size()}, {"crc32", crc32(bytes.data(), bytes.size())}};
  }
  write_file_atomic((fs::path(fresh) / "manifest.json").string(), manifest.dump(1) + "\n");
  replace_directory(fresh, target);
}

Checkpoint load_checkpoint(const std::string& run_dir) {
  const fs::path dir = checkpoint_directory(run_dir);
  if (!fs::is_directory(dir))
    throw Error(run_dir + ": no checkpoint here (expected " + dir.string() + "/)");
  const std::string manifest_path = (dir / "manifest.json").string();
  json manifest;
  try {
    manifest = json::parse(read_file(manifest_path));
  } catch (const json::exception& e) {
    throw Error(manifest_path + ": corrupt manifest (" + e.what() + ")");
  }
  try {
    if (manifest.value("format", "") != kFormat)
      throw Error(manifest_path + ": not a " + std::string(kFormat) + " manifest");
    auto read_checked = [&](const std::string& name) {
      const std::string path = (dir / name).string();
      const std::string bytes = read_file(path);
      const json& entry = manifest.at("files").at(name);
      if (bytes.size() != entry.at("bytes").get<std::size_t>())
        throw Error(path + ": " + std::to_string(bytes.size()) + " bytes, the manifest says " +
                    std::to_string(entry.at("bytes").get<std::size_t>()) + " (truncated?)");
      if (crc32(bytes.data(), bytes.size()) != entry.at("crc32").get<std::uint32_t>())
        throw Error(path + ": checksum does not match the manifest (corrupted)");
      return bytes;
    };
    Checkpoint c;
    c.config_text = read_checked("config.yaml");
    c.vocabulary = read_checked("vocab.txt");
    c.parameters = decode_npz(read_checked("model.npz"), (dir / "model.npz").string());
    c.optimizer_state = decode_npz(read_checked("optimizer.npz"), (dir / "optimizer.npz").string());
    c.config_file = manifest.value("config_file", "");
    c.optimizer_steps = manifest.at("optimizer_steps").get<std::int64_t>();
    c.seed = manifest.at("seed").get<std::uint64_t>();
    c.data_overrides = manifest.at("data_overrides").get<std::map<std::string, std::string>>();
    const json& p = manifest.at("position");
    c.position.step = p.at("step");
    c.position.phase = p.at("phase");
    c.position.epoch = p.at("epoch");
    c.position.next_batch = p.at("next_batch");
    c.position.epoch_rng = p.at("epoch_rng");
    c.position.rng = p.at("rng");
    c.position.epoch_loss_sum = p.at("epoch_loss_sum");
    c.position.epoch_sequences = p.at("epoch_sequences");
    c.position.epoch_tokens = p.at("epoch_tokens");
    return c;
  } catch (const json::exception& e) {
    throw Error(manifest_path + ": incomplete manifest (" + e.what() + ")");
  }
}

}  // namespace strata

#include "tasks/language_model.hpp"

#include <algorithm>
#include <filesystem>

#include "framework/plugin.hpp"
#include "framework/text.hpp"
#include "tasks/corpus_phase.hpp"
#include "text/dataset.hpp"
#include "training/training_state.hpp"

namespace strata {

std::vector<std::vector<std::string>> load_phase_texts(const RunConfig& config) {
  std::vector<std::vector<std::string>> texts;
  for (const PhaseConfig& phase : config.phases) {
    if (phase.format == "corpus") {  // streamed, never held whole (tasks/corpus_phase.hpp)
      texts.emplace_back();
      continue;
    }
    try {
      auto file = config.data_files->find(phase.data);
      if (file == config.data_files->end())
        file = config.data_files->emplace(phase.data, read_data_file(phase.data)).first;
      texts.push_back(parse_texts(phase.data, file->second, parse_data_format(phase.format)));
    } catch (const Error& e) {
      throw Error(phase.data_mark.to_string() + ": training.phases \"" + phase.name +
                  "\": " + e.what());
    }
  }
  return texts;
}

void load_config_plugins(const RunConfig& config) {
  for (const std::string& path : config.plugins) {
    // A relative path that is not there from this working directory is satisfied by a
    // library of the same file name already loaded (`--plugin elsewhere/libx.so`).
    const std::filesystem::path p(path);
    if (p.is_relative() && !std::filesystem::exists(p)) {
      const auto loaded = loaded_plugins();
      if (std::any_of(loaded.begin(), loaded.end(), [&](const std::string& l) {
            return std::filesystem::path(l).filename() == p.filename();
          }))
        continue;
    }
    try {
      load_plugin(path);
    } catch (const Error& e) {
      throw Error(config.file + ": plugins: " + e.what());
    }
  }
}

namespace {

// Every phase's texts in order: the examples of JSON and line files, a corpus's
// documents as they are read.
class PhaseTexts final : public TextSource {
 public:
  explicit PhaseTexts(const RunConfig& config) : examples_(load_phase_texts(config)) {
    for (std::size_t p = 0; p < config.phases.size(); ++p) {
      const PhaseConfig& phase = config.phases[p];
      if (phase.format != "corpus") continue;
      try {
        const CorpusOptions options = corpus_options(phase);
        corpora_.emplace(p, CorpusSource(corpus_files(options), options));
      } catch (const Error& e) {
        throw Error(phase.data_mark.to_string() + ": training.phases \"" + phase.name +
                    "\": " + e.what());
      }
    }
  }
  void for_each(const std::function<void(std::string_view)>& visit) const override {
    for (std::size_t p = 0; p < examples_.size(); ++p)
      if (auto it = corpora_.find(p); it != corpora_.end())
        it->second.for_each(visit);
      else
        TextList(examples_[p]).for_each(visit);
  }
  std::uint64_t bytes() const override {
    std::uint64_t n = 0;
    for (std::size_t p = 0; p < examples_.size(); ++p)
      n += corpora_.count(p) ? corpora_.at(p).bytes() : TextList(examples_[p]).bytes();
    return n;
  }

 private:
  std::vector<std::vector<std::string>> examples_;
  std::map<std::size_t, CorpusSource> corpora_;
};

}  // namespace

std::unique_ptr<Tokenizer> build_tokenizer(const RunConfig& config) {
  return make_tokenizer(config.tokenizer, PhaseTexts(config));
}

std::vector<std::string> unknown_prompt_words(const Tokenizer& tokenizer,
                                              const std::string& prompt) {
  return tokenizer.encode(prompt).unknown;
}

std::vector<std::string> unanswerable_prompts(const RunConfig& config, const Tokenizer& tokenizer) {
  std::vector<std::string> out;
  const auto& prompts = config.generation.prompts;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::string where =
        config.file + ": generation.prompts[" + std::to_string(i) + "] \"" + prompts[i] + "\": ";
    const Encoded encoded = tokenizer.encode(prompts[i]);
    if (encoded.ids.empty())
      out.push_back(where + "the prompt has no words");
    else if (std::all_of(encoded.ids.begin(), encoded.ids.end(),
                         [&](std::int32_t id) { return id == tokenizer.unk_id(); }))
      out.push_back(where + "none of its words is in the vocabulary (" +
                    join(encoded.unknown, ", ") + "), so it reads as <unk> only");
  }
  return out;
}

LanguageModel LanguageModel::create(RunConfig config, std::unique_ptr<Tokenizer> tokenizer) {
  load_config_plugins(config);
  if (!tokenizer) tokenizer = build_tokenizer(config);
  LanguageModel lm{std::move(config), std::move(tokenizer), Rng(0), {}, {}};
  lm.rng = Rng(lm.config.seed);
  lm.model = build_model<float>(lm.config.model, std::int64_t(lm.tokenizer->size()), lm.rng);
  require_vocabulary_output(lm.model, lm.config.model);
  return lm;
}

LanguageModel LanguageModel::restore(const Checkpoint& checkpoint, const std::string& run_dir) {
  RunConfig config =
      parse_run_config(checkpoint.config_text, checkpoint_directory(run_dir) + "/config.yaml",
                       checkpoint.data_overrides);
  config.seed = checkpoint.seed;
  load_config_plugins(config);  // before the model: its layers may come from them
  LanguageModel lm{std::move(config),
                   load_tokenizer(checkpoint.tokenizer_type, checkpoint.tokenizer_files,
                                  checkpoint_directory(run_dir)),
                   Rng(0),
                   {},
                   {}};
  lm.rng = Rng(lm.config.seed);
  lm.model = build_model<float>(lm.config.model, std::int64_t(lm.tokenizer->size()), lm.rng);
  lm.import_parameters(checkpoint.parameters, checkpoint_directory(run_dir) + "/model.npz");
  return lm;
}

std::vector<NamedArray> LanguageModel::export_parameters() const {
  return strata::export_parameters(model);
}

void LanguageModel::import_parameters(const std::vector<NamedArray>& arrays,
                                      const std::string& what) {
  strata::import_parameters(model, arrays, what);
}

std::vector<std::int32_t> LanguageModel::encode(const std::string& text,
                                                std::vector<std::string>* unknown) const {
  Encoded e = tokenizer->encode(text);
  if (unknown) *unknown = e.unknown;
  return e.ids;
}

}  // namespace strata

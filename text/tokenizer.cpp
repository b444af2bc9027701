#include "text/tokenizer.hpp"

#include "framework/errors.hpp"
#include "framework/text.hpp"
#include "text/sentencepiece_tokenizer.hpp"
#include "text/word_tokenizer.hpp"

namespace strata {

// The one list of built-in tokenizers.
void register_builtin_tokenizers(TokenizerRegistry& registry) {
  registry.add(make_tokenizer_info<WordTokenizer>(WordTokenizer::kType));
  registry.add(make_tokenizer_info<SentencePieceTokenizer>(SentencePieceTokenizer::kType));
}

TokenizerRegistry& tokenizer_registry() {
  static TokenizerRegistry* registry = [] {
    auto* r = new TokenizerRegistry("tokenizer");  // never destroyed: plugins may outlive statics
    register_builtin_tokenizers(*r);
    return r;
  }();
  return *registry;
}

TokenizerChoice choose_tokenizer(const ConfigNode& given) {
  const std::string where = "tokenizer";
  const ConfigNode node = given.valid()
                              ? given
                              : ConfigNode::parse(std::string("{type: ") + kDefaultTokenizer + "}",
                                                  "<default tokenizer>");
  if (!node.is_map()) throw ConfigError(node.mark(), where, "expected a mapping like {type: word}");
  const ConfigNode type_node = node.get("type");
  if (!type_node.is_scalar())
    throw ConfigError(node.mark(), where,
                      "missing required key \"type\" (a tokenizer type name; known types: " +
                          join(tokenizer_registry().names(), ", ") + ")");
  const std::string type = type_node.scalar();
  const TokenizerInfo* info = nullptr;
  try {
    info = &tokenizer_registry().find(type);
  } catch (const UnknownName& e) {
    throw ConfigError(type_node.mark(), where, e.what());
  }
  return {info, ConfigSection(node, where + " (" + type + ")", info->schema, {"type"})};
}

std::unique_ptr<Tokenizer> make_tokenizer(const ConfigNode& node,
                                          const std::vector<std::string>& texts) {
  return make_tokenizer(node, TextList(texts));
}

std::unique_ptr<Tokenizer> make_tokenizer(const ConfigNode& node, const TextSource& texts) {
  const TokenizerChoice choice = choose_tokenizer(node);
  std::unique_ptr<Tokenizer> tokenizer = choice.info->from_data(texts, choice.section);
  if (!tokenizer)
    throw Error("tokenizer type \"" + choice.info->type + "\": from_data returned nothing");
  return tokenizer;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& type, const TokenizerFiles& files,
                                          const std::string& dir) {
  const TokenizerInfo* info = nullptr;
  try {
    info = &tokenizer_registry().find(type);
  } catch (const UnknownName& e) {
    throw Error(dir + "/manifest.json: " + e.what() + " (the run was saved with it)");
  }
  std::unique_ptr<Tokenizer> tokenizer = info->load(files, dir);
  if (!tokenizer) throw Error("tokenizer type \"" + type + "\": load returned nothing");
  return tokenizer;
}

}  // namespace strata

// Reads tokenizer.json and tokenizer_config.json into a TokenizerImpl (see tokenizer_impl.h).
// Every field read from the files is type-checked; a malformed file is kDataLoss, an unsupported
// component kUnimplemented naming it. It must never accept a file it only half understood.
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_json_reader.h"

namespace tessera {

namespace {

constexpr std::uintmax_t kMaxTokenizerFileBytes = std::uintmax_t{1} << 30;

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  TS_CHECK(!ec, kNotFound, "tokenizer file {} not found: {}", path.string(), ec.message());
  TS_CHECK(size <= kMaxTokenizerFileBytes, kDataLoss, "tokenizer file {} is {} bytes, over the limit of {}",
           path.string(), size, kMaxTokenizerFileBytes);
  std::ifstream in(path, std::ios::binary);
  TS_CHECK(in.good(), kNotFound, "cannot open tokenizer file {}", path.string());
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  TS_CHECK(in.gcount() == static_cast<std::streamsize>(size), kDataLoss, "short read of tokenizer file {}",
           path.string());
  return data;
}

nlohmann::json read_json(const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    TS_THROW(kDataLoss, "tokenizer file {} is not valid JSON: {}", path.string(), e.what());
  }
}

// bos_token / eos_token: a string, an AddedToken object {content: ...}, or null.
std::string token_string(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return {};
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  TS_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), kDataLoss,
           "tokenizer_config.json {} must be a string or an object with content, got {}", key, v.dump());
  return v["content"].get<std::string>();
}

std::optional<std::string> chat_template(const nlohmann::json& config) {
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return std::nullopt;
  const auto& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  // A list of named templates: take "default", else the first.
  TS_CHECK(t.is_array(), kDataLoss, "tokenizer_config.json chat_template must be a string or a list, got {}",
           t.type_name());
  std::optional<std::string> first;
  for (const auto& item : t) {
    TS_CHECK(item.is_object() && item.contains("template") && item["template"].is_string(), kDataLoss,
             "tokenizer_config.json chat_template entries need a template string");
    if (!first) first = item["template"].get<std::string>();
    if (item.value("name", std::string()) == "default") return item["template"].get<std::string>();
  }
  return first;
}

// added_tokens_decoder entries that tokenizer.json does not list (transformers adds these on load).
void merge_config_added_tokens(const nlohmann::json& config, std::vector<tok::AddedToken>& tokens) {
  if (!config.contains("added_tokens_decoder") || !config["added_tokens_decoder"].is_object()) return;
  nlohmann::json extra = nlohmann::json::array();
  for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
    int64_t id = 0;
    try {
      id = std::stoll(it.key());
    } catch (const std::exception&) {
      TS_THROW(kDataLoss, "tokenizer_config.json added_tokens_decoder key {:?} is not an id", it.key());
    }
    bool known = false;
    for (const auto& t : tokens) known = known || t.id == id;
    if (known) continue;
    auto entry = it.value();
    TS_CHECK(entry.is_object(), kDataLoss, "tokenizer_config.json added_tokens_decoder[{}] must be an object", id);
    entry["id"] = id;
    extra.push_back(entry);
  }
  for (auto& t : tok::parse_added_tokens(extra)) tokens.push_back(std::move(t));
}

}  // namespace

std::unique_ptr<TokenizerImpl> load_tokenizer(const std::filesystem::path& dir) {
  auto parsed = tok::read_tokenizer_json(read_file(dir / "tokenizer.json"), (dir / "tokenizer.json").string());
  auto& json = parsed.document;
  TS_CHECK(json.is_object(), kDataLoss, "{} is not a JSON object", (dir / "tokenizer.json").string());
  nlohmann::json config = nlohmann::json::object();
  if (std::filesystem::exists(dir / "tokenizer_config.json")) {
    config = read_json(dir / "tokenizer_config.json");
    TS_CHECK(config.is_object(), kDataLoss, "{} is not a JSON object", (dir / "tokenizer_config.json").string());
  }
  auto impl = std::make_unique<TokenizerImpl>();
  auto field = [&json](const char* key) { return json.contains(key) ? json[key] : nlohmann::json(); };
  TS_CHECK(json.contains("model"), kDataLoss, "tokenizer.json has no model");
  impl->normalizer = tok::make_normalizer(field("normalizer"));
  impl->pre_tokenizer = tok::make_pre_tokenizer(field("pre_tokenizer"));
  impl->model = std::make_unique<tok::BpeModel>(json["model"], std::move(parsed.tables));
  impl->post_processor = tok::make_post_processor(field("post_processor"));
  impl->decoder = tok::make_decoder(field("decoder"));
  impl->decoder_has_byte_fallback = field("decoder").dump().find("\"ByteFallback\"") != std::string::npos;

  auto added = tok::parse_added_tokens(field("added_tokens"));
  merge_config_added_tokens(config, added);
  impl->added.build(std::move(added), impl->normalizer.get());

  impl->vocab_size = impl->model->vocab_end();
  for (const auto& t : impl->added.tokens()) impl->vocab_size = std::max(impl->vocab_size, static_cast<size_t>(t.id) + 1);

  impl->bos_token = token_string(config, "bos_token");
  impl->eos_token = token_string(config, "eos_token");
  auto lookup = [&impl](const std::string& s) -> std::optional<TokenId> {
    if (s.empty()) return std::nullopt;
    if (const auto* t = impl->added.find_by_content(s)) return t->id;
    return impl->model->token_to_id(s);
  };
  impl->bos_id = lookup(impl->bos_token);
  impl->eos_id = lookup(impl->eos_token);
  impl->chat_template = chat_template(config);
  return impl;
}

}  // namespace tessera

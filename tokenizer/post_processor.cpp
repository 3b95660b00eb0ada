// Post-processor implementations (see post_processor.h).
#include "tokenizer/post_processor.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace tessera::tok {

namespace {

// The single-sequence template as a list of items: the sequence itself, or fixed special ids.
class TemplatePostProcessor final : public PostProcessor {
 public:
  struct Item {
    bool is_sequence;
    std::vector<TokenId> ids;
  };
  explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  void process(std::vector<TokenId>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<TokenId> out;
    out.reserve(ids.size() + 4);
    for (const auto& item : items_) {
      if (item.is_sequence)
        out.insert(out.end(), ids.begin(), ids.end());
      else
        out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
    ids = std::move(out);
  }

 private:
  std::vector<Item> items_;
};

class NoopPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<TokenId>&, bool) const override {}
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<TokenId>& ids, bool add_special_tokens) const override {
    for (const auto& p : parts_) p->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

TokenId checked_id(const nlohmann::json& v, std::string_view what) {
  TS_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < (int64_t{1} << 30), kDataLoss,
           "tokenizer post_processor {} has a bad id {}", what, v.dump());
  return static_cast<TokenId>(v.get<int64_t>());
}

std::unique_ptr<PostProcessor> make_template(const nlohmann::json& c) {
  TS_CHECK(c.contains("single") && c["single"].is_array(), kDataLoss,
           "tokenizer TemplateProcessing needs a single template: {}", c.dump().substr(0, 200));
  const auto& specials = c.contains("special_tokens") ? c["special_tokens"] : nlohmann::json::object();
  std::vector<TemplatePostProcessor::Item> items;
  for (const auto& piece : c["single"]) {
    if (piece.contains("Sequence")) {
      items.push_back({true, {}});
      continue;
    }
    TS_CHECK(piece.contains("SpecialToken") && piece["SpecialToken"].contains("id"), kDataLoss,
             "tokenizer TemplateProcessing item must be Sequence or SpecialToken: {}", piece.dump());
    auto name = piece["SpecialToken"]["id"].get<std::string>();
    TS_CHECK(specials.contains(name) && specials[name].contains("ids") && specials[name]["ids"].is_array(), kDataLoss,
             "tokenizer TemplateProcessing special token {:?} is not defined in special_tokens", name);
    std::vector<TokenId> ids;
    for (const auto& id : specials[name]["ids"]) ids.push_back(checked_id(id, name));
    items.push_back({false, std::move(ids)});
  }
  return std::make_unique<TemplatePostProcessor>(std::move(items));
}

// Bert/Roberta: {"cls": [token, id], "sep": [token, id]} -> [CLS] A [SEP].
std::unique_ptr<PostProcessor> make_cls_sep(const nlohmann::json& c) {
  TS_CHECK(c.contains("cls") && c["cls"].is_array() && c["cls"].size() == 2 && c.contains("sep") &&
               c["sep"].is_array() && c["sep"].size() == 2,
           kDataLoss, "tokenizer {} post_processor needs cls and sep pairs: {}", c["type"].get<std::string>(),
           c.dump().substr(0, 200));
  std::vector<TemplatePostProcessor::Item> items;
  items.push_back({false, {checked_id(c["cls"][1], "cls")}});
  items.push_back({true, {}});
  items.push_back({false, {checked_id(c["sep"][1], "sep")}});
  return std::make_unique<TemplatePostProcessor>(std::move(items));
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& c) {
  if (c.is_null()) return nullptr;
  TS_CHECK(c.is_object() && c.contains("type") && c["type"].is_string(), kDataLoss,
           "tokenizer post_processor must be an object with a type, got {}", c.dump().substr(0, 200));
  const auto type = c["type"].get<std::string>();
  if (type == "TemplateProcessing") return make_template(c);
  if (type == "ByteLevel") return std::make_unique<NoopPostProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") return make_cls_sep(c);
  if (type == "Sequence") {
    TS_CHECK(c.contains("processors") && c["processors"].is_array(), kDataLoss,
             "tokenizer Sequence post_processor needs a processors array: {}", c.dump().substr(0, 200));
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& p : c["processors"]) {
      auto pp = make_post_processor(p);
      if (pp) parts.push_back(std::move(pp));
    }
    return std::make_unique<SequencePostProcessor>(std::move(parts));
  }
  TS_THROW(kUnimplemented, "unsupported tokenizer post_processor type {:?}", type);
}

}  // namespace tessera::tok

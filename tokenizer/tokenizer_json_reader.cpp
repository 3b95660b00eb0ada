// Streaming tokenizer.json reader (see tokenizer_json_reader.h). Every event outside model.vocab and
// model.merges is forwarded to nlohmann's DOM builder; those two are collected directly.
#include "tokenizer/tokenizer_json_reader.h"

#include "common/error.h"

namespace tessera::tok {

namespace {

using json = nlohmann::json;

class Reader {
 public:
  Reader(json& root, BpeTables& tables) : dom_(root, false), tables_(tables) {}

  bool null() { return scalar() && dom_.null(); }
  bool boolean(bool v) { return scalar() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) {
    if (mode_ == Mode::kVocab) return vocab_id(v);
    return scalar() && dom_.number_integer(v);
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (mode_ == Mode::kVocab)
      return v <= static_cast<json::number_unsigned_t>(INT64_MAX) ? vocab_id(static_cast<int64_t>(v)) : fail("vocab id too large");
    return scalar() && dom_.number_unsigned(v);
  }
  bool number_float(json::number_float_t v, const json::string_t& s) { return scalar() && dom_.number_float(v, s); }
  bool binary(json::binary_t& b) { return scalar() && dom_.binary(b); }
  bool string(json::string_t& s) {
    if (mode_ == Mode::kMerges) {
      auto sp = s.find(' ');
      if (sp == std::string::npos) return fail("merge \"" + s.substr(0, 100) + "\" is not two tokens separated by a space");
      tables_.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      if (pair_count_ >= 2) return fail("merge pair has more than two tokens");
      pair_[pair_count_++] = std::move(s);
      return true;
    }
    return scalar() && dom_.string(s);
  }
  bool key(json::string_t& k) {
    if (mode_ == Mode::kVocab) {
      pending_key_ = std::move(k);
      return true;
    }
    if (!stack_.empty()) stack_.back().key = k;
    return dom_.key(k);
  }
  bool start_object(std::size_t n) {
    if (mode_ != Mode::kNone) return fail("unexpected object inside the vocabulary or merges");
    if (at_model_field("vocab")) {
      mode_ = Mode::kVocab;
      return dom_.start_object(0) && dom_.end_object();
    }
    stack_.push_back({true, {}});
    return dom_.start_object(n);
  }
  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kNone;
      return true;
    }
    stack_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_count_ = 0;
      return true;
    }
    if (mode_ != Mode::kNone) return fail("unexpected array inside the vocabulary or a merge");
    if (at_model_field("merges")) {
      mode_ = Mode::kMerges;
      return dom_.start_array(0) && dom_.end_array();
    }
    stack_.push_back({false, {}});
    return dom_.start_array(n);
  }
  bool end_array() {
    if (mode_ == Mode::kMergePair) {
      if (pair_count_ != 2) return fail("merge pair does not hold two tokens");
      tables_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kNone;
      return true;
    }
    stack_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    return fail(fmt::format("byte {}: {}", position, e.what()));
  }

  const std::string& error() const { return error_; }

 private:
  enum class Mode { kNone, kVocab, kMerges, kMergePair };
  struct Level {
    bool is_object;
    std::string key;
  };

  // The next value is root["model"][field].
  bool at_model_field(const char* field) const {
    return stack_.size() == 2 && stack_[0].is_object && stack_[0].key == "model" && stack_[1].is_object &&
           stack_[1].key == field;
  }
  bool scalar() { return mode_ == Mode::kNone || fail("unexpected value inside the vocabulary or merges"); }
  bool vocab_id(int64_t id) {
    tables_.vocab.emplace_back(std::move(pending_key_), id);
    return true;
  }
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  BpeTables& tables_;
  std::vector<Level> stack_;
  Mode mode_ = Mode::kNone;
  std::string pending_key_;
  std::string pair_[2];
  int pair_count_ = 0;
  std::string error_;
};

}  // namespace

TokenizerJson read_tokenizer_json(std::string_view text, const std::string& path) {
  TokenizerJson out;
  Reader reader(out.document, out.tables);
  bool ok = json::sax_parse(text.begin(), text.end(), &reader, nlohmann::detail::input_format_t::json, true);
  TS_CHECK(ok, kDataLoss, "{} is not a valid tokenizer.json: {}", path,
           reader.error().empty() ? std::string("parse failed") : reader.error());
  return out;
}

}  // namespace tessera::tok

#include "gateway/watchdog_metrics.h"

#include <cstdlib>
#include <map>
#include <optional>

#include "common/prometheus.h"

namespace gateway {
namespace {

struct Family {
  std::string name;  // renamed
  std::string help;
  std::string type;
  std::string samples;
};

// Families in first-seen order, found by their renamed name.
class Families {
 public:
  Family& get(const std::string& name) {
    auto [it, added] = index_.emplace(name, families_.size());
    if (added) families_.push_back(Family{name, {}, {}, {}});
    return families_[it->second];
  }
  void append_to(std::string& out) const {
    for (const Family& family : families_) {
      if (!family.help.empty()) out += "# HELP " + family.name + " " + family.help + "\n";
      if (!family.type.empty()) out += "# TYPE " + family.name + " " + family.type + "\n";
      out += family.samples;
    }
  }

 private:
  std::vector<Family> families_;
  std::map<std::string, std::size_t> index_;
};

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

std::size_t name_end(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size() && name_char(text[at], at == 0)) ++at;
  return at;
}

// "1", "0.25", "+Inf", "NaN", optionally followed by an integer timestamp.
bool valid_value(std::string_view text) {
  std::size_t space = text.find(' ');
  std::string number(text.substr(0, space));
  char* end = nullptr;
  std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size()) return false;
  if (space == std::string_view::npos) return true;
  std::string_view stamp = text.substr(space + 1);
  if (stamp.starts_with('-')) stamp.remove_prefix(1);
  return !stamp.empty() && stamp.find_first_not_of("0123456789") == std::string_view::npos;
}

struct Sample {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string_view>> labels;  // values still escaped
  std::string_view value;                                             // the value and any timestamp
};

// `name{a="x",b="y"} value [timestamp]` or `name value`; nullopt for anything else.
std::optional<Sample> parse_sample(std::string_view line) {
  Sample sample;
  std::size_t at = name_end(line);
  if (at == 0) return std::nullopt;
  sample.name = line.substr(0, at);
  if (at < line.size() && line[at] == '{') {
    ++at;
    while (at < line.size() && line[at] != '}') {
      std::size_t end = at + name_end(line.substr(at));
      if (end == at || end + 1 >= line.size() || line[end] != '=' || line[end + 1] != '"')
        return std::nullopt;
      std::size_t value_at = end + 2, close = value_at;
      while (close < line.size() && line[close] != '"') close += line[close] == '\\' ? 2 : 1;
      if (close >= line.size()) return std::nullopt;
      sample.labels.emplace_back(line.substr(at, end - at),
                                 line.substr(value_at, close - value_at));
      at = close + 1;
      if (at < line.size() && line[at] == ',') ++at;
    }
    if (at >= line.size()) return std::nullopt;
    ++at;  // '}'
  }
  if (at >= line.size() || line[at] != ' ') return std::nullopt;
  sample.value = line.substr(line.find_first_not_of(' ', at) == std::string_view::npos
                                 ? line.size()
                                 : line.find_first_not_of(' ', at));
  if (!valid_value(sample.value)) return std::nullopt;
  return sample;
}

void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

std::string relabelled(const Sample& sample, const WatchdogScrape& scrape) {
  std::string out = watchdog_series_name(sample.name);
  out += "{function=\"";
  append_escaped(out, scrape.function);
  out += "\",index=\"" + std::to_string(scrape.index) + "\"";
  for (const auto& [name, value] : sample.labels) {
    if (name == "function" || name == "index") continue;
    out.append(",").append(name).append("=\"").append(value).append("\"");
  }
  out.append("} ").append(sample.value).append("\n");
  return out;
}

// Whether a sample named `sample` belongs to the family `family` of `type` (a histogram's or a
// summary's samples carry suffixes).
bool in_family(std::string_view sample, std::string_view family, std::string_view type) {
  if (sample == family) return true;
  if (type != "histogram" && type != "summary") return false;
  if (!sample.starts_with(family)) return false;
  std::string_view suffix = sample.substr(family.size());
  return suffix == "_sum" || suffix == "_count" || (type == "histogram" && suffix == "_bucket");
}

void merge(Families& families, const WatchdogScrape& scrape) {
  std::string_view text = scrape.text;
  std::string current;  // the family named by the last HELP or TYPE, as the watchdog names it
  std::string current_type;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      std::string_view rest = line.substr(7);
      std::size_t name_at = name_end(rest);
      if (name_at == 0 || name_at >= rest.size() || rest[name_at] != ' ') continue;
      std::string name(rest.substr(0, name_at));
      if (name != current) current_type.clear();
      current = name;
      Family& family = families.get(watchdog_series_name(name));
      std::string_view value = rest.substr(name_at + 1);
      bool help = line[2] == 'H';
      if (!help) current_type = value;
      std::string& field = help ? family.help : family.type;
      if (field.empty()) field = value;
      continue;
    }
    if (line.empty() || line.front() == '#') continue;
    auto sample = parse_sample(line);
    if (!sample) continue;
    std::string family = in_family(sample->name, current, current_type)
                             ? watchdog_series_name(current)
                             : watchdog_series_name(sample->name);
    families.get(family).samples += relabelled(*sample, scrape);
  }
}

}  // namespace

std::string watchdog_series_name(std::string_view name) {
  constexpr std::string_view kOwn = "fastfn_watchdog_", kFastfn = "fastfn_";
  if (name.starts_with(kOwn)) return std::string(name);
  if (name.starts_with(kFastfn))
    return std::string(kOwn) + std::string(name.substr(kFastfn.size()));
  return std::string(kOwn) + std::string(name);
}

void append_watchdog_metrics(std::string& out, const std::vector<WatchdogScrape>& scrapes) {
  namespace prom = common::prometheus;
  Families families;
  for (const auto& scrape : scrapes)
    if (scrape.ok) merge(families, scrape);
  families.append_to(out);
  auto per_scrape = [&](const char* name, const char* help, auto value_of) {
    prom::append_header(out, name, help, "gauge");
    for (const auto& scrape : scrapes) {
      std::string index = std::to_string(scrape.index);
      prom::append_sample(out, name, {{"function", scrape.function}, {"index", index}},
                          value_of(scrape));
    }
  };
  per_scrape("fastfn_gateway_watchdog_scrape_ok",
             "Whether the watchdog answered this scrape of its /_/metrics (1) or not (0).",
             [](const WatchdogScrape& s) { return s.ok ? 1.0 : 0.0; });
  per_scrape("fastfn_gateway_watchdog_scrape_duration_seconds",
             "How long this scrape of the watchdog's /_/metrics took.",
             [](const WatchdogScrape& s) { return s.seconds; });
}

}  // namespace gateway

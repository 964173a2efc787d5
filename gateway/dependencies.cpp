#include "gateway/dependencies.h"

#include <cstdint>
#include <cstdio>

namespace gateway {
namespace {

namespace fs = std::filesystem;

// FNV-1a: stable across runs and builds, as the state files need.
std::string hash_of(std::string_view manifest, std::string_view lock) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (std::string_view part : {manifest, std::string_view("\0", 1), lock})
    for (unsigned char c : part) hash = (hash ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

std::string_view first_line(std::string_view text) { return text.substr(0, text.find('\n')); }

}  // namespace

std::string_view manifest_for(std::string_view runtime) {
  if (runtime == "python") return "requirements.txt";
  if (runtime == "node") return "package.json";
  if (runtime == "php") return "composer.json";
  if (runtime == "go") return "go.mod";
  if (runtime == "rust") return "Cargo.toml";
  return "";
}

fs::path go_program(const fs::path& dir) { return dir / kStateDir / "go" / "handler"; }

fs::path rust_program(const fs::path& dir, std::string_view binary) {
  return dir / kStateDir / "cargo" / "release" / binary;
}

std::string cargo_binary_name(std::string_view cargo_toml) {
  // The first [[bin]]'s name, else the [package]'s: the table a `name = "..."` line belongs to.
  auto skip_blanks = [](std::string_view& text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  };
  std::string section, package, bin;
  while (!cargo_toml.empty()) {
    const std::size_t end = cargo_toml.find('\n');
    std::string_view line = cargo_toml.substr(0, end);
    cargo_toml.remove_prefix(end == std::string_view::npos ? cargo_toml.size() : end + 1);
    skip_blanks(line);
    if (line.starts_with('[')) {
      section = std::string(line.substr(0, line.find(']') + 1 + line.starts_with("[[")));
      continue;
    }
    if (!line.starts_with("name")) continue;
    line.remove_prefix(4);
    skip_blanks(line);
    if (!line.starts_with('=')) continue;
    const std::size_t open = line.find('"');
    const std::size_t close = line.find('"', open + 1);
    if (open == std::string_view::npos || close == std::string_view::npos) continue;
    const std::string value(line.substr(open + 1, close - open - 1));
    if (section == "[package]" && package.empty()) package = value;
    if (section == "[[bin]]" && bin.empty()) bin = value;
  }
  return bin.empty() ? package : bin;
}

DependencyState dependency_state(const std::string& function, const fs::path& dir,
                                 std::string_view runtime, const Manifest& manifest,
                                 std::string_view ok_text, std::string_view failed_text,
                                 const std::string& binary) {
  const std::string hash = hash_of(manifest.text, manifest.lock);
  const fs::path state = dir / kStateDir;
  const bool build = runtime == "go" || runtime == "rust";
  DependencyState result;
  result.fingerprint = manifest.name + "@" + hash;
  if (first_line(ok_text) == hash) {
    if (runtime == "python") result.env["PYTHONPATH"] = (state / "python").string();
    result.fingerprint += ":ready";
    return result;
  }
  if (first_line(failed_text) == hash) {
    const auto newline = failed_text.find('\n');
    result.kind = DependencyState::Kind::kFailed;
    result.reason =
        manifest.name + (build ? ": the build failed: " : ": the install failed: ") +
        std::string(newline == std::string_view::npos ? "" : failed_text.substr(newline + 1));
    while (!result.reason.empty() && result.reason.back() == '\n') result.reason.pop_back();
    result.fingerprint += ":failed";
    return result;
  }
  DependencyInstall install{function, dir, manifest.name, hash, {}, {}, {}, {}};
  if (runtime == "python") {
    install.staging = state / "python.installing";
    install.target = state / "python";
    install.tool = "pip install";
    install.argv = {binary,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--no-warn-script-location",
                    "--target",
                    install.staging.string(),
                    "-r",
                    manifest.name};
  } else if (runtime == "php") {
    // Into the folder's vendor/, which the handler loads (require 'vendor/autoload.php').
    install.tool = "composer install";
    install.argv = {binary, "install", "--no-interaction", "--no-dev", "--no-progress"};
  } else if (runtime == "rust") {
    // In place: cargo replaces the program only when the build succeeds, and keeps its
    // incremental state for the next build. --offline: no download at build.
    install.tool = "cargo build";
    install.argv = {binary,          "build", "--release", "--offline", "--target-dir",
                    (state / "cargo").string()};
  } else if (build) {
    install.staging = state / "go.installing";
    install.target = state / "go";
    install.tool = "go build";
    // A module builds its package; a lone handler.go builds that file.
    install.argv = {binary,
                    "build",
                    "-trimpath",
                    "-o",
                    (install.staging / "handler").string(),
                    manifest.name == "go.mod" ? "." : manifest.name};
  } else {
    // npm ci installs exactly the lock file; without one, npm install must not write one (a new
    // file in the folder would change the hash and install again).
    install.tool = manifest.lock.empty() ? "npm install" : "npm ci";
    install.argv =
        manifest.lock.empty()
            ? std::vector<std::string>{binary,       "install",   "--omit=dev",
                                       "--no-audit", "--no-fund", "--no-package-lock"}
            : std::vector<std::string>{binary, "ci", "--omit=dev", "--no-audit", "--no-fund"};
  }
  result.kind = DependencyState::Kind::kInstalling;
  result.reason = build ? "building it (" + install.tool + ")"
                        : "installing its dependencies (" + manifest.name + ")";
  result.install = std::move(install);
  result.fingerprint += ":installing";
  return result;
}

}  // namespace gateway

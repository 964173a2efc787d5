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
  if (runtime == "go") return "go.mod";
  return "";
}

fs::path go_program(const fs::path& dir) { return dir / kStateDir / "go" / "handler"; }

DependencyState dependency_state(const std::string& function, const fs::path& dir,
                                 std::string_view runtime, const Manifest& manifest,
                                 std::string_view ok_text, std::string_view failed_text,
                                 const std::string& binary) {
  const std::string hash = hash_of(manifest.text, manifest.lock);
  const fs::path state = dir / kStateDir;
  const bool build = runtime == "go";
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
  result.reason =
      build ? "building it (go build)" : "installing its dependencies (" + manifest.name + ")";
  result.install = std::move(install);
  result.fingerprint += ":installing";
  return result;
}

}  // namespace gateway

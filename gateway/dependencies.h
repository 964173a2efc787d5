// A function's own dependencies, as FastFN installs them: requirements.txt beside a python handler
// (pip install --target <folder>/.fastfn/python, put on the handler's PYTHONPATH), package.json
// beside a node handler (npm ci with a package-lock.json, else npm install, into the folder's
// node_modules) and composer.json beside a php one (composer install, into its vendor/), never
// into the system; and a Go or Rust function's build (go build into
// <folder>/.fastfn/go/handler, cargo build into <folder>/.fastfn/cargo). An install is keyed by
// the manifest's hash: the installer writes <folder>/.fastfn/deps.ok (the hash) when it
// succeeded, or deps.failed (the hash, then the reason) when it did not, and discovery reads them
// to tell whether the function is ready, being installed, or broken. Changing the manifest
// changes the hash and installs again. Exec functions (app servers with a command) manage their
// own.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gateway {

inline constexpr std::string_view kStateDir = ".fastfn";  // inside the function's folder

struct DependencyInstall {
  std::string function;
  std::filesystem::path dir;      // the function's folder; the command runs there
  std::string manifest;           // "requirements.txt" or "package.json"
  std::string hash;               // of the manifest (and its lock file)
  std::vector<std::string> argv;  // no shell
  std::string tool;               // what the log and the reason call it: "pip install", "go build"
  // Where pip installs: a fresh folder, renamed over `target` once the install succeeded, so a
  // failed install leaves the last good one in place. Empty for npm (it installs in place).
  std::filesystem::path staging, target;
};

// The manifest of `runtime`'s handlers: "requirements.txt", "package.json", "composer.json",
// "go.mod" (a Go program, built with go build into <folder>/.fastfn/go/handler), "Cargo.toml" (a
// Rust program, built with cargo build into <folder>/.fastfn/cargo), or "" for none.
std::string_view manifest_for(std::string_view runtime);

// What an install is made of, as the walker read it.
struct Manifest {
  std::string name;  // "requirements.txt", "package.json", "go.mod", or "handler.go" (no module)
  std::string text;  // its content; for Go, every .go file of the folder and go.mod, with names
  std::string lock;  // package-lock.json or go.sum; "" when none
};

struct DependencyState {
  enum class Kind { kReady, kInstalling, kFailed } kind = Kind::kReady;
  std::string reason;                        // kInstalling and kFailed: what the function says
  std::optional<DependencyInstall> install;  // kInstalling: what to run
  std::map<std::string, std::string> env;    // kReady: added to the handler's (PYTHONPATH)
  std::string fingerprint;                   // differs when the installed state does
};

// Pure. `ok_text` and `failed_text` are the state files' contents ("" if absent). `binary` runs
// the manifest's tool: the python interpreter (pip runs as `python3 -m pip`), npm, or go.
DependencyState dependency_state(const std::string& function, const std::filesystem::path& dir,
                                 std::string_view runtime, const Manifest& manifest,
                                 std::string_view ok_text, std::string_view failed_text,
                                 const std::string& binary);

// A Go function's program, once built.
std::filesystem::path go_program(const std::filesystem::path& dir);

// A Rust function's program (cargo build --release into <folder>/.fastfn/cargo), named `binary`.
std::filesystem::path rust_program(const std::filesystem::path& dir, std::string_view binary);

// The program a Cargo.toml builds: its first [[bin]]'s name, else its [package]'s; "" for none.
// Pure; reads only `name = "..."` lines, which is all a package's name can be written as.
std::string cargo_binary_name(std::string_view cargo_toml);

}  // namespace gateway

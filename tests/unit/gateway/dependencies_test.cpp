#include "gateway/dependencies.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using gateway::dependency_state;
using Kind = gateway::DependencyState::Kind;
using Argv = std::vector<std::string>;

const std::filesystem::path kDir = "/srv/fns/api";

// The hash the state files hold, as an install would write it.
gateway::Manifest manifest(std::string name, std::string text, std::string lock = "") {
  return {std::move(name), std::move(text), std::move(lock)};
}

std::string hash_of(const gateway::Manifest& m) {
  auto state = dependency_state("api", kDir, "python", m, "", "", "tool");
  REQUIRE(state.install);
  return state.install->hash;
}

}  // namespace

TEST_CASE("dependencies: a manifest never installed is installed, into the folder") {
  const auto python = dependency_state(
      "api", kDir, "python", manifest("requirements.txt", "requests==2\n"), "", "", "py3");
  CHECK(python.kind == Kind::kInstalling);
  CHECK(python.reason == "installing its dependencies (requirements.txt)");
  REQUIRE(python.install);
  CHECK(python.install->argv == Argv{"py3", "-m", "pip", "install", "--disable-pip-version-check",
                                     "--no-input", "--no-warn-script-location", "--target",
                                     "/srv/fns/api/.fastfn/python.installing", "-r",
                                     "requirements.txt"});
  CHECK(python.install->target == "/srv/fns/api/.fastfn/python");
  const auto node =
      dependency_state("api", kDir, "node", manifest("package.json", "{}"), "", "", "npm");
  REQUIRE(node.install);
  CHECK(node.install->argv ==
        Argv{"npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--no-package-lock"});
  CHECK(node.install->staging.empty());
  const auto locked =
      dependency_state("api", kDir, "node", manifest("package.json", "{}", "{}"), "", "", "npm");
  REQUIRE(locked.install);
  CHECK(locked.install->argv == Argv{"npm", "ci", "--omit=dev", "--no-audit", "--no-fund"});
}

TEST_CASE("dependencies: the state files say ready or failed, for this manifest only") {
  const auto requirements = manifest("requirements.txt", "requests==2\n");
  const std::string hash = hash_of(requirements);
  const auto ready = dependency_state("api", kDir, "python", requirements, hash + "\n", "", "py3");
  CHECK(ready.kind == Kind::kReady);
  CHECK(ready.env.at("PYTHONPATH") == "/srv/fns/api/.fastfn/python");
  CHECK_FALSE(ready.install);
  const auto failed =
      dependency_state("api", kDir, "python", requirements, "",
                       hash + "\npip install ended with exit code 1: no match\n", "py3");
  CHECK(failed.kind == Kind::kFailed);
  CHECK(failed.reason ==
        "requirements.txt: the install failed: pip install ended with exit code 1: no match");
  // Another manifest (or lock file) is another install, whatever the files say of the last one.
  CHECK(dependency_state("api", kDir, "python", manifest("requirements.txt", "requests==3\n"),
                         hash + "\n", "", "py3")
            .kind == Kind::kInstalling);
  CHECK(hash_of(manifest("package.json", "{}", "a")) !=
        hash_of(manifest("package.json", "{}", "b")));
  // The fingerprints differ between the states, so the function restarts when an install ends.
  CHECK(ready.fingerprint != failed.fingerprint);
  CHECK(ready.fingerprint != dependency_state("api", kDir, "python",
                                              manifest("requirements.txt", "requests==2\n"), "", "",
                                              "py3")
                                 .fingerprint);
  CHECK(gateway::manifest_for("sh").empty());
}

TEST_CASE("dependencies: a Go function is built, a module as a package, a lone file as itself") {
  const auto module =
      dependency_state("api", kDir, "go", manifest("go.mod", "module x\n"), "", "", "go");
  CHECK(module.reason == "building it (go build)");
  REQUIRE(module.install);
  CHECK(module.install->argv ==
        Argv{"go", "build", "-trimpath", "-o", "/srv/fns/api/.fastfn/go.installing/handler", "."});
  CHECK(module.install->target == "/srv/fns/api/.fastfn/go");
  CHECK(gateway::go_program(kDir) == "/srv/fns/api/.fastfn/go/handler");
  const auto file =
      dependency_state("api", kDir, "go", manifest("handler.go", "package main\n"), "", "", "go");
  REQUIRE(file.install);
  CHECK(file.install->argv.back() == "handler.go");
  const auto failed =
      dependency_state("api", kDir, "go", manifest("go.mod", "module x\n"), "",
                       module.install->hash + "\ngo build ended with exit code 1\n", "go");
  CHECK(failed.reason == "go.mod: the build failed: go build ended with exit code 1");
  CHECK(failed.env.empty());
}

TEST_CASE("dependencies: a Rust function is built in place by cargo, offline") {
  const auto built =
      dependency_state("api", kDir, "rust", manifest("Cargo.toml", "[package]\n"), "", "", "cargo");
  CHECK(built.reason == "building it (cargo build)");
  REQUIRE(built.install);
  CHECK(built.install->argv == Argv{"cargo", "build", "--release", "--offline", "--target-dir",
                                    "/srv/fns/api/.fastfn/cargo"});
  CHECK(built.install->staging.empty());  // cargo replaces the program only when it built one
  CHECK(gateway::rust_program(kDir, "hello") == "/srv/fns/api/.fastfn/cargo/release/hello");
  const auto failed =
      dependency_state("api", kDir, "rust", manifest("Cargo.toml", "[package]\n"), "",
                       built.install->hash + "\ncargo build ended with exit code 101\n", "cargo");
  CHECK(failed.reason == "Cargo.toml: the build failed: cargo build ended with exit code 101");
}

TEST_CASE("dependencies: a php function's composer.json is installed into its vendor/") {
  CHECK(gateway::manifest_for("php") == "composer.json");
  const auto state = dependency_state("api", kDir, "php", manifest("composer.json", "{}"), "", "",
                                      "composer");
  CHECK(state.reason == "installing its dependencies (composer.json)");
  REQUIRE(state.install);
  CHECK(state.install->argv ==
        Argv{"composer", "install", "--no-interaction", "--no-dev", "--no-progress"});
  CHECK(state.install->tool == "composer install");
  CHECK(state.install->staging.empty());
}

TEST_CASE("dependencies: the program a Cargo.toml builds") {
  CHECK(gateway::cargo_binary_name("[package]\nname = \"hello-api\"\nversion = \"0.1.0\"\n") ==
        "hello-api");
  CHECK(gateway::cargo_binary_name("[package]\nname=\"pkg\"\n\n[[bin]]\nname = \"server\"\n"
                                   "path = \"src/main.rs\"\n") == "server");
  CHECK(gateway::cargo_binary_name("[dependencies]\nname = \"not-this\"\n[package]\n"
                                   "  name = \"this\" # a comment\n") == "this");
  CHECK(gateway::cargo_binary_name("[workspace]\nmembers = []\n").empty());
  CHECK(gateway::cargo_binary_name("").empty());
}

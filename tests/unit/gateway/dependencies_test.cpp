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
std::string hash_of(std::string_view runtime, std::string_view manifest, std::string_view lock = "") {
  auto state = dependency_state("api", kDir, runtime, manifest, lock, "", "", "tool");
  REQUIRE(state.install);
  return state.install->hash;
}

}  // namespace

TEST_CASE("dependencies: a manifest never installed is installed, into the folder") {
  const auto python = dependency_state("api", kDir, "python", "requests==2\n", "", "", "", "py3");
  CHECK(python.kind == Kind::kInstalling);
  CHECK(python.reason == "installing its dependencies (requirements.txt)");
  REQUIRE(python.install);
  CHECK(python.install->argv == Argv{"py3", "-m", "pip", "install", "--disable-pip-version-check",
                                     "--no-input", "--no-warn-script-location", "--target",
                                     "/srv/fns/api/.fastfn/python.installing", "-r",
                                     "requirements.txt"});
  CHECK(python.install->target == "/srv/fns/api/.fastfn/python");
  const auto node = dependency_state("api", kDir, "node", "{}", "", "", "", "npm");
  REQUIRE(node.install);
  CHECK(node.install->argv ==
        Argv{"npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--no-package-lock"});
  CHECK(node.install->staging.empty());
  const auto locked = dependency_state("api", kDir, "node", "{}", "{\"lock\": 1}", "", "", "npm");
  REQUIRE(locked.install);
  CHECK(locked.install->argv == Argv{"npm", "ci", "--omit=dev", "--no-audit", "--no-fund"});
}

TEST_CASE("dependencies: the state files say ready or failed, for this manifest only") {
  const std::string hash = hash_of("python", "requests==2\n");
  const auto ready = dependency_state("api", kDir, "python", "requests==2\n", "", hash + "\n", "", "py3");
  CHECK(ready.kind == Kind::kReady);
  CHECK(ready.env.at("PYTHONPATH") == "/srv/fns/api/.fastfn/python");
  CHECK_FALSE(ready.install);
  const auto failed = dependency_state("api", kDir, "python", "requests==2\n", "", "",
                                       hash + "\npip install ended with exit code 1: no match\n", "py3");
  CHECK(failed.kind == Kind::kFailed);
  CHECK(failed.reason ==
        "requirements.txt: the install failed: pip install ended with exit code 1: no match");
  // Another manifest (or lock file) is another install, whatever the files say of the last one.
  CHECK(dependency_state("api", kDir, "python", "requests==3\n", "", hash + "\n", "", "py3").kind ==
        Kind::kInstalling);
  CHECK(hash_of("node", "{}", "a") != hash_of("node", "{}", "b"));
  // The fingerprints differ between the states, so the function restarts when an install ends.
  CHECK(ready.fingerprint != failed.fingerprint);
  CHECK(ready.fingerprint !=
        dependency_state("api", kDir, "python", "requests==2\n", "", "", "", "py3").fingerprint);
  CHECK(gateway::manifest_for("sh").empty());
}

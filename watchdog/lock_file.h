// OpenFaaS's lock file: its watchdogs create $TMPDIR/.lock (or /tmp/.lock) once they serve and
// remove it when they stop, and its images' HEALTHCHECK is `[ -e /tmp/.lock ]`. fastfn-watchdog
// keeps the same file so that such an image works with the binary swapped.
#pragma once

#include <string>

namespace watchdog {

class LockFile {
 public:
  LockFile() = default;  // none
  // Creates the file (empty); a failure is logged, not fatal: the health endpoint still answers.
  static LockFile create();
  ~LockFile() { remove(); }
  LockFile(LockFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  LockFile& operator=(LockFile&&) = delete;
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

  // Removes the file now (a draining watchdog is not healthy); once.
  void remove() noexcept;

  // $TMPDIR/.lock, or /tmp/.lock when TMPDIR is unset or empty (Go's os.TempDir, as OpenFaaS).
  static std::string default_path();

 private:
  std::string path_;
};

}  // namespace watchdog

#include "watchdog/lock_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/logging.h"

namespace watchdog {

std::string LockFile::default_path() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/.lock";
}

LockFile LockFile::create() {
  LockFile lock;
  std::string path = default_path();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0660);
  if (fd < 0) {
    common::logger("watchdog")->warn("cannot write the lock file path={} error=\"{}\"", path,
                                     std::strerror(errno));
    return lock;
  }
  ::close(fd);
  lock.path_ = std::move(path);
  return lock;
}

void LockFile::remove() noexcept {
  if (path_.empty()) return;
  ::unlink(path_.c_str());
  path_.clear();
}

}  // namespace watchdog

// One thread that reads the output pipes of many children (their stderr, or stdout and stderr on
// one pipe), on a common::EventLoop: a child writes whether or not anybody asked, so a reader must
// always be there, or a chatty child blocks on a full pipe. What the bytes become is each pipe's
// Sink's business (the watchdog logs its handlers' lines; the gateway relays its watchdogs' lines
// and keeps them for /_fn/logs). No thread per pipe: one epoll for all of them.
#pragma once

#include <memory>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/event_loop.h"
#include "common/unique_fd.h"

namespace common {

class OutputPump {
 public:
  // What is done with one pipe's bytes. Called on the pump's thread only (so one sink's calls
  // never overlap), or on the thread that stops the pump. Must not throw; must not block long, or
  // every other pipe waits too.
  class Sink {
   public:
    virtual ~Sink() = default;
    // Bytes as they were read, in order: lines may be split anywhere between two calls.
    virtual void on_bytes(std::string_view bytes) = 0;
    // The pipe ended (EOF, a read error, or the pump stopped): flush what is held. Called once.
    virtual void on_end() = 0;
  };

  // Starts the thread. Throws std::system_error when epoll or the thread cannot be made.
  OutputPump();
  ~OutputPump();  // stop()
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  // Takes ownership of the read end of a pipe: it is read until EOF, then closed. Thread-safe.
  // After stop(), what the pipe holds now is given to the sink at once, and it is ended.
  void add(UniqueFd fd, std::unique_ptr<Sink> sink);
  // Stops the thread, then reads what each pipe still holds without waiting for more, ends every
  // sink and closes the pipes. Idempotent; not from a sink.
  void stop();

 private:
  struct Source {
    UniqueFd fd;
    std::unique_ptr<Sink> sink;
    EventLoop::WatchId watch = 0;
  };
  void start_reading(std::unique_ptr<Source> source);  // on the loop thread
  void on_readable(int fd);                            // on the loop thread
  void end(int fd);                                    // on the loop thread

  EventLoop loop_;
  std::unordered_map<int, std::unique_ptr<Source>> sources_;  // the loop thread's, then stop()'s
  std::thread thread_;
  bool stopped_ = false;  // stop()'s
};

// Reads what `fd` (non-blocking) holds into `sink`, without waiting: true at its end (EOF or an
// error), false when it would block. At most `max_reads` reads, so that a writer faster than this
// reader cannot keep it here.
bool read_available(int fd, OutputPump::Sink& sink, int max_reads);

}  // namespace common

// The framing of the front end's private links to the daemon (link.h, calls.h): each message
// travels over a Unix stream socket as a 4-byte big-endian length and the serialized message.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace authd_front {

// A connected Unix stream socket to `path`, or -1.
int ConnectUnix(const std::string& path);
// Sends all of `size` bytes (false: the socket broke).
bool WriteAll(int fd, const char* data, size_t size);
// Sends what the socket takes of `size` bytes now, without waiting (`sent`: how many; fewer
// than `size` when its buffer is full). False: the socket broke.
bool WriteNow(int fd, const char* data, size_t size, size_t* sent);
// Appends `message` framed to `out`.
void AppendFrame(const google::protobuf::MessageLite& message, std::string* out);

// Reads the frames of one socket through one buffer: a frame that came whole (the usual
// answer) costs one recv, not one for its length and one for its body; bytes of the next
// frame read along stay for the next call. Used by one thread at a time.
class FrameReader {
 public:
  FrameReader(int fd, uint32_t max);
  int fd() const { return fd_; }
  // A whole frame is buffered: Next returns it without reading the socket (poll would not
  // say so).
  bool Ready() const;
  // Reads one frame's message bytes into `out` (false: closed, broken, or over `max` bytes).
  bool Next(std::string* out);
  // Wipes every byte the buffer holds but those not returned yet (a secret came in a frame
  // returned).
  void Forget();

 private:
  // Reads at least once more from the socket (false: closed or broken).
  bool Fill(size_t want);

  const int fd_;
  const uint32_t max_;
  std::vector<char> buffer_;
  size_t start_ = 0;  // buffer_[start_, end_) is read and not yet returned
  size_t end_ = 0;
};

}  // namespace authd_front

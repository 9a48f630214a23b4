// The framing of the front end's private links to the daemon (link.h, calls.h): each message
// travels over a Unix stream socket as a 4-byte big-endian length and the serialized message.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace authd_front {

// A connected Unix stream socket to `path`, or -1.
int ConnectUnix(const std::string& path);
// Sends all of `size` bytes (false: the socket broke).
bool WriteAll(int fd, const char* data, size_t size);
// Reads exactly `size` bytes (false: the socket closed or broke).
bool ReadAll(int fd, char* data, size_t size);
// Appends `message` framed to `out`.
void AppendFrame(const google::protobuf::MessageLite& message, std::string* out);
// Reads one frame's message bytes into `out` (false: closed, broken, or over `max` bytes).
bool ReadFrame(int fd, uint32_t max, std::string* out);

}  // namespace authd_front

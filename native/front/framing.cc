#include "framing.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace authd_front {

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void AppendFrame(const google::protobuf::MessageLite& message, std::string* out) {
  uint32_t size = htonl(static_cast<uint32_t>(message.ByteSizeLong()));
  out->append(reinterpret_cast<const char*>(&size), 4);
  message.AppendToString(out);
}

bool ReadFrame(int fd, uint32_t max, std::string* out) {
  uint32_t size = 0;
  if (!ReadAll(fd, reinterpret_cast<char*>(&size), 4)) return false;
  size = ntohl(size);
  if (size > max) return false;
  out->resize(size);
  return ReadAll(fd, out->data(), size);
}

}  // namespace authd_front

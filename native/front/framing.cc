#include "framing.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/crypto.h>

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

bool WriteNow(int fd, const char* data, size_t size, size_t* sent) {
  *sent = 0;
  while (*sent < size) {
    ssize_t n = ::send(fd, data + *sent, size - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    *sent += static_cast<size_t>(n);
  }
  return true;
}

void AppendFrame(const google::protobuf::MessageLite& message, std::string* out) {
  uint32_t size = htonl(static_cast<uint32_t>(message.ByteSizeLong()));
  out->append(reinterpret_cast<const char*>(&size), 4);
  message.AppendToString(out);
}

namespace {

constexpr size_t kReadChunk = 64u << 10;

uint32_t FrameSize(const char* header) {
  uint32_t size = 0;
  std::memcpy(&size, header, 4);
  return ntohl(size);
}

}  // namespace

FrameReader::FrameReader(int fd, uint32_t max) : fd_(fd), max_(max), buffer_(kReadChunk) {}

bool FrameReader::Ready() const {
  size_t held = end_ - start_;
  return held >= 4 && held - 4 >= FrameSize(buffer_.data() + start_);
}

bool FrameReader::Next(std::string* out) {
  while (end_ - start_ < 4) {
    if (!Fill(4)) return false;
  }
  uint32_t size = FrameSize(buffer_.data() + start_);
  if (size > max_) return false;
  while (end_ - start_ - 4 < size) {
    if (!Fill(size_t{4} + size)) return false;
  }
  out->assign(buffer_.data() + start_ + 4, size);
  start_ += size_t{4} + size;
  if (start_ == end_) start_ = end_ = 0;
  return true;
}

void FrameReader::Forget() {
  // Everything but the bytes not returned yet (a memmove may have left copies anywhere).
  OPENSSL_cleanse(buffer_.data(), start_);
  OPENSSL_cleanse(buffer_.data() + end_, buffer_.size() - end_);
}

bool FrameReader::Fill(size_t want) {
  if (start_ > 0 && buffer_.size() - start_ < want) {  // move what is held to the front
    std::memmove(buffer_.data(), buffer_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buffer_.size() - start_ < want) buffer_.resize(start_ + want);
  while (true) {
    ssize_t n = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    end_ += static_cast<size_t>(n);
    return true;
  }
}

}  // namespace authd_front

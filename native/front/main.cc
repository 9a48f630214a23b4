// authd-front: the native gRPC front end of an authd center node.
//
// It owns the node's public port (TLS with client certificates, or the loopback-only insecure
// development mode), serves OtpService's Verify, VerifyBatch and VerifyStream itself — caller,
// admission, deadlines, batching — by handing the verifications to the daemon's engine over a
// private Unix socket, serves TokenService Sign and SignStream and SmartcardService Transmit
// and TransmitStream by handing them to the daemon over its call link (calls.h; served on
// completion queues: unary.h, streams.h), and forwards every other call to the daemon's
// gRPC server on another private Unix socket. The daemon (`authd serve` with [server] front = "native") starts it,
// restarts it if it dies, and stops it with SIGTERM; it exits if the daemon dies.
//
//   authd-front --listen=HOST:PORT --daemon=unix:PATH [--engine=PATH]
//               [--calls=PATH --linked=METHOD,METHOD... --linked-streams=METHOD,...]
//               (--insecure | --tls-cert=F --tls-key=F --client-ca=F)
//               [--batch-max=N] [--queue-max=N] [--max-in-flight=N] [--batch-request-max=N]
//               [--window=N] [--grace=SECONDS] [--max-message=BYTES] [--max-send=BYTES]
//               [--empty-method=M] [--empty-linked=M]
//               [--server-options=NAME=N,NAME=N...] [--tally=PATH] [--queues=N]
// --calls, --linked, --linked-streams: the unary and streaming methods served over the
// daemon's call link (calls.h).
// --empty-method: the benchmarks' empty call, answered here (unary.h); --empty-linked: the
// same call sent over the engine link as a Verify is and answered by the daemon's link reader
// (needs --engine; empty_link.h).
// --server-options: gRPC core's connection limits, as the daemon's own server sets them
// (concurrent streams, handshake and idle timeouts, keepalive; authd/front.py).
// --tally: the file (made by the daemon) where every call answered is counted (tally.h).
// --queues: the server's completion queues, one thread each (queues.h; default 2).
// The token the daemon expects with forwarded calls comes in AUTHD_FRONT_TOKEN.
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "caller.h"
#include "calls.h"
#include "empty_link.h"
#include "forward.h"
#include "link.h"
#include "tally.h"
#include "streams.h"
#include "unary.h"
#include "verify.h"

namespace {

std::map<std::string, std::string> Arguments(int argc, char** argv) {
  std::map<std::string, std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      std::cerr << "authd-front: unexpected argument " << arg << "\n";
      std::exit(2);
    }
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      out[arg.substr(2)] = "1";
    } else {
      out[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    }
  }
  return out;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "authd-front: cannot read " << path << "\n";
    std::exit(2);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

long Number(const std::map<std::string, std::string>& args, const std::string& key,
            long fallback) {
  auto it = args.find(key);
  if (it == args.end()) return fallback;
  char* end = nullptr;
  long value = std::strtol(it->second.c_str(), &end, 10);
  if (end == it->second.c_str() || *end != '\0' || value < 0) {
    std::cerr << "authd-front: --" << key << " must be a whole number\n";
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG: every absl::Mutex gRPC takes and drops (several a
  // call) would otherwise be tracked in a lock-order graph for deadlock reports.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // the daemon went away: so do we
  if (getppid() == 1) return 1;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // every thread: only sigwait below takes them

  auto args = Arguments(argc, argv);
  if (!args.count("listen") || !args.count("daemon")) {
    std::cerr << "authd-front: --listen and --daemon are required\n";
    return 2;
  }
  bool insecure = args.count("insecure") > 0;
  const char* token_env = std::getenv("AUTHD_FRONT_TOKEN");
  std::string token = token_env ? token_env : "";
  int max_message = static_cast<int>(Number(args, "max-message", 4 << 20));  // requests
  int max_send = static_cast<int>(Number(args, "max-send", 4 << 20));  // responses

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (insecure) {
    credentials = grpc::InsecureServerCredentials();
  } else {
    if (!args.count("tls-cert") || !args.count("tls-key") || !args.count("client-ca")) {
      std::cerr << "authd-front: --tls-cert, --tls-key and --client-ca are required\n";
      return 2;
    }
    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = Read(args["client-ca"]);
    tls.pem_key_cert_pairs.push_back({Read(args["tls-key"]), Read(args["tls-cert"])});
    credentials = grpc::SslServerCredentials(tls);
  }

  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(max_send);
  channel_args.SetMaxSendMessageSize(max_message);
  auto daemon = grpc::CreateCustomChannel(args["daemon"], grpc::InsecureChannelCredentials(),
                                          channel_args);

  authd_front::Callers callers(insecure);
  authd_front::Forwarder forwarder(daemon, callers, token);
  std::unique_ptr<authd_front::Link> link;
  std::unique_ptr<authd_front::VerifyService> verify;
  if (args.count("engine")) {
    authd_front::LinkOptions options;
    options.path = args["engine"];
    options.batch_max = static_cast<size_t>(Number(args, "batch-max", 256));
    options.queue_max = static_cast<size_t>(Number(args, "queue-max", 2048));
    options.window = static_cast<size_t>(std::max(1L, Number(args, "window", 4)));
    link = std::make_unique<authd_front::Link>(options);
    verify = std::make_unique<authd_front::VerifyService>(
        callers, *link, Number(args, "max-in-flight", 4096),
        static_cast<size_t>(Number(args, "batch-request-max", 1000)));
    if (!link->WaitConnected(std::chrono::seconds(30))) {
      std::cerr << "authd-front: cannot reach the verification engine at " << options.path
                << "\n";
      return 1;
    }
  }

  std::unique_ptr<authd_front::CallLink> calls;
  if (args.count("calls")) {
    std::set<std::string> methods;
    std::stringstream names(args["linked"]);
    std::string name;
    while (std::getline(names, name, ',')) {
      if (!name.empty()) methods.insert(name);
    }
    std::set<std::string> streams;
    std::stringstream stream_names(args["linked-streams"]);
    while (std::getline(stream_names, name, ',')) {
      if (!name.empty()) streams.insert(name);
    }
    calls = std::make_unique<authd_front::CallLink>(args["calls"], methods, streams, callers);
    if (!calls->WaitConnected(std::chrono::seconds(30))) {
      std::cerr << "authd-front: cannot reach the daemon's call link at " << args["calls"]
                << "\n";
      return 1;
    }
  }

  authd_front::Tally tally;
  if (args.count("tally") && !tally.Open(args["tally"])) {
    std::cerr << "authd-front: cannot map the call tally " << args["tally"] << "\n";
    return 2;
  }
  if (link) link->ReportQueued(tally.Queued(authd_front::Tally::Queue::kEngine));
  if (calls) calls->ReportQueued(tally.Queued(authd_front::Tally::Queue::kCalls));
  if (calls) calls->ReportLentSigning(tally.LentStreamSigning());
  grpc::ServerBuilder builder;
  if (args.count("tally")) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> tallies;
    tallies.push_back(std::make_unique<authd_front::TallyInterceptorFactory>(tally));
    builder.experimental().SetInterceptorCreators(std::move(tallies));
  }
  int port = 0;
  builder.AddListeningPort(args["listen"], credentials, &port);
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_send);
  if (args.count("server-options")) {
    std::stringstream options(args["server-options"]);
    std::string option;
    while (std::getline(options, option, ',')) {
      auto eq = option.find('=');
      char* end = nullptr;
      long value = eq == std::string::npos ? 0 : std::strtol(option.c_str() + eq + 1, &end, 10);
      if (eq == std::string::npos || end == option.c_str() + eq + 1 || *end != '\0') {
        std::cerr << "authd-front: --server-options wants NAME=N,..., not " << option << "\n";
        return 2;
      }
      builder.AddChannelArgument(option.substr(0, eq), static_cast<int>(value));
    }
  }
  if (verify) builder.RegisterService(verify.get());
  std::unique_ptr<authd_front::EmptyLinkService> empty_linked;
  if (args.count("empty-linked")) {
    if (!verify) {
      std::cerr << "authd-front: --empty-linked needs --engine\n";
      return 2;
    }
    empty_linked =
        std::make_unique<authd_front::EmptyLinkService>(*verify, args["empty-linked"]);
    builder.RegisterService(empty_linked.get());
  }
  // Every method on the server's completion queues: the verifications, the linked unary
  // methods and the empty calls (verify.h, unary.h), the linked streams (streams.h), and every
  // other method forwarded (forward.h).
  authd_front::ServerQueues queues(
      static_cast<int>(std::clamp(Number(args, "queues", 2), 1L, 64L)));
  authd_front::UnaryService unary(calls.get(), args["empty-method"]);
  authd_front::LinkedStreamService streams(calls.get());
  if (!unary.idle()) builder.RegisterService(&unary);
  if (!streams.idle()) builder.RegisterService(&streams);
  builder.RegisterAsyncGenericService(forwarder.service());
  queues.AddTo(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "authd-front: cannot listen on " << args["listen"] << "\n";
    return 1;
  }
  if (!unary.idle()) unary.Start(queues);
  if (verify) verify->Start(queues);
  if (empty_linked) empty_linked->Start(queues);
  if (!streams.idle()) streams.Start(queues);
  forwarder.Start(queues);
  queues.Start();
  std::cout << "authd-front listening on port " << port << std::endl;

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  long grace_ms = Number(args, "grace-ms", 10000);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server->Wait();
  if (link) link->Stop();
  if (calls) calls->Stop();
  forwarder.Drain();
  queues.Stop();
  return 0;
}

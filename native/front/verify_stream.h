// OtpService VerifyStream, served as a raw bidirectional method on the server's completion
// queues (queues.h). Frames are read ahead (at most kFramesAhead unanswered), each goes to the
// engine as one call, and the answers are written one frame at a time, in the order of the
// frames. A frame beyond the admission bound is answered with the error in every response, and
// the stream goes on; a frame the engine refuses whole (oversized, the caller) ends the stream
// with that status after the frames before it; a frame that does not parse ends the reads, as
// the client's half-close does (as gRPC's callback API took it). The stream ends only when
// every frame sent to the engine has come back, and a client that goes away ends it.
//
// Reads are started on the queue's thread, writes on it or on the link's thread that read the
// answer (one write at a time); a call is deleted on its queue's thread once every tag it gave
// gRPC came back.
#pragma once

#include "queues.h"

namespace authd_front {

class VerifyService;

// Once the server started, before the queues' threads: the first streams requested on each.
void ServeStream(VerifyService& service, const ServerQueues& queues);

}  // namespace authd_front

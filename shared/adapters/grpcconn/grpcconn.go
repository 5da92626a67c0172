// Package grpcconn holds the gRPC connection settings our Google Cloud
// clients (Firestore, Pub/Sub) dial with.
package grpcconn

import (
	"google.golang.org/api/option"
	"google.golang.org/grpc"
)

// Window is the fixed HTTP/2 flow-control window of each stream and of each
// connection. Setting it turns off gRPC's window estimation, which after
// nearly every response sends a window update and a ping (and reads the
// ping's answer): one write and a read more per call, for windows our
// requests and answers (a few KiB, a page of a query) never come near.
// 4 MiB lets a stream move gigabytes a second at the region's round trip.
const Window = 4 << 20

// DialOptions are the gRPC dial options behind Options.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(Window), grpc.WithInitialConnWindowSize(Window)}
}

// Options are the client options for Firestore and Pub/Sub, with extra
// dial options of a client's own after them (the Firestore adapter's). The
// Firestore client dials the emulator itself and ignores them there
// (FIRESTORE_EMULATOR_HOST), so the Firestore adapter hands it a connection
// dialed with DialOptions; the Pub/Sub client takes them everywhere.
func Options(extra ...grpc.DialOption) []option.ClientOption {
	var opts []option.ClientOption
	for _, o := range append(DialOptions(), extra...) {
		opts = append(opts, option.WithGRPCDialOption(o))
	}
	return opts
}

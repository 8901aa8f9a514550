package bus

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Why one stream per LSP, and why LSPs do not create streams.
//
// JetStream's API carries the stream name in its subjects
// ($JS.API.CONSUMER.CREATE.<stream>.<consumer>, $JS.API.CONSUMER.MSG.NEXT.
// <stream>.<consumer>, $JS.ACK.<stream>...), so with one stream per LSP,
// plain subject permissions confine an LSP to its own stream: it cannot
// create a consumer on another LSP's stream, pull from it, ack for it, or
// get a message from it. With one shared stream, every LSP would need the
// API subjects of that stream, and a consumer or a direct get on it would
// read everyone's mail.
//
// Creating or updating a stream takes the subjects, sources and mirrors in
// the request body, which permissions cannot see: an LSP allowed to update
// its own stream could add another LSP's stream as a source and read it.
// So streams are created by the operator who hosts the NATS server (the
// provisioner), who can read all traffic anyway; an LSP may only look at
// its stream and create or update consumers on it.

// provisionerInbox is the reply-inbox prefix of the provisioner.
const provisionerInbox = inboxRoot + "provisioner"

// responseTTL bounds how long an LSP may answer a request it received.
const responseTTL = time.Minute

// Permissions returns the nats-server permissions of the LSP with the
// given node key: publish durable messages and requests only with its own
// key as the from-key; receive only requests addressed to it and replies
// on its own inbox; use the JetStream API only for its own inbound stream;
// answer each request it received once.
func Permissions(key NodeKey) *server.Permissions {
	k := key.String()
	stream := StreamName(key)
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			durablePrefix + "*." + k + ".*",
			requestPrefix + "*." + k + ".*",
			"$JS.API.STREAM.INFO." + stream,
			"$JS.API.CONSUMER.CREATE." + stream + ".>",
			"$JS.API.CONSUMER.INFO." + stream + ".*",
			"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
			// Acks, in JetStream's v1 and v2 reply formats.
			"$JS.ACK." + stream + ".>",
			"$JS.ACK.*.*." + stream + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			requestPrefix + k + ".*.*",
			inboxPrefix(key) + ".>",
		}},
		Response: &server.ResponsePermission{MaxMsgs: 1, Expires: responseTTL},
	}
}

// ProvisionerPermissions returns the nats-server permissions of the
// provisioner: the operator hosting the server, who creates and updates
// every LSP's inbound stream (see Provisioner) and nothing else.
func ProvisionerPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.CREATE.*",
			"$JS.API.STREAM.UPDATE.*",
			"$JS.API.STREAM.INFO.*",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			provisionerInbox + ".>",
		}},
	}
}

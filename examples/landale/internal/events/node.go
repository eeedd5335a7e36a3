package events

import (
	"context"
	"errors"

	"github.com/pyre-go/pyre/pubsub"
)

// NodePubSub layers a node-local in-memory PubSub under a cluster PubSub,
// so that state every node computes for itself can reach this node's
// subscribers only.
//
// A subscriber is subscribed on both layers. Broadcast and BroadcastFrom go
// to the cluster (and from there to every node, this one included);
// BroadcastLocal goes to this node's subscribers only. A message is
// delivered once either way.
type NodePubSub struct {
	cluster pubsub.PubSub
	local   *pubsub.Memory
}

// NewNodePubSub returns cluster with a node-local layer. Closing the
// NodePubSub closes the local layer only; the cluster PubSub is the
// caller's.
func NewNodePubSub(cluster pubsub.PubSub) *NodePubSub {
	return &NodePubSub{cluster: cluster, local: pubsub.NewMemory(nil)}
}

// Cluster returns the cluster PubSub.
func (n *NodePubSub) Cluster() pubsub.PubSub { return n.cluster }

// Subscribe subscribes s to topic on both layers.
func (n *NodePubSub) Subscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	if err := n.local.Subscribe(ctx, topic, s); err != nil {
		return err
	}
	if err := n.cluster.Subscribe(ctx, topic, s); err != nil {
		_ = n.local.Unsubscribe(ctx, topic, s)
		return err
	}
	return nil
}

// Unsubscribe unsubscribes s from topic on both layers.
func (n *NodePubSub) Unsubscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	return errors.Join(n.cluster.Unsubscribe(ctx, topic, s), n.local.Unsubscribe(ctx, topic, s))
}

// Broadcast delivers msg on every node.
func (n *NodePubSub) Broadcast(ctx context.Context, msg *pubsub.Message) error {
	return n.cluster.Broadcast(ctx, msg)
}

// BroadcastFrom delivers msg on every node, marked as sent by from.
func (n *NodePubSub) BroadcastFrom(ctx context.Context, from string, msg *pubsub.Message) error {
	return n.cluster.BroadcastFrom(ctx, from, msg)
}

// BroadcastLocal delivers msg to this node's subscribers only.
func (n *NodePubSub) BroadcastLocal(ctx context.Context, msg *pubsub.Message) error {
	return n.local.Broadcast(ctx, msg)
}

// Close closes the local layer.
func (n *NodePubSub) Close() error { return n.local.Close() }

// localBroadcaster is a PubSub that can deliver to this node only.
type localBroadcaster interface {
	BroadcastLocal(ctx context.Context, msg *pubsub.Message) error
}

// Produce recloop events and a control from Go with segmentio/kafka-go.
//
//	go run ./produce USER_ID [ITEM_ID ...]
//
// Configuration comes from the variables recloop reads: RECLOOP_KAFKA_BOOTSTRAP
// (127.0.0.1:9092), RECLOOP_TOPIC_EVENTS (recloop.events), RECLOOP_TOPIC_CONTROLS
// (recloop.controls). Prints one JSON line per acknowledged record: topic, key, partition,
// offset.
//
// The one setting that matters: Balancer: &kafka.Murmur2Balancer{}. recloop's workers expect a
// user's events and controls on the partition Kafka's Java client would choose (murmur2 of
// the key); kafka-go's default (round robin) and its Hash balancer (FNV-1a) would split users
// across partitions and break per-user order and the co-partitioning of controls with events.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: produce USER_ID [ITEM_ID ...]")
		os.Exit(2)
	}
	userID, items := os.Args[1], os.Args[2:]
	if len(items) == 0 {
		items = []string{"item-1", "item-2"}
	}
	eventsTopic := env("RECLOOP_TOPIC_EVENTS", "recloop.events")
	controlsTopic := env("RECLOOP_TOPIC_CONTROLS", "recloop.controls")

	writer := &kafka.Writer{
		Addr:         kafka.TCP(strings.Split(env("RECLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092"), ",")...),
		Balancer:     &kafka.Murmur2Balancer{}, // Kafka's Java-compatible key hashing: required
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
		Completion: func(messages []kafka.Message, err error) {
			if err != nil {
				return // WriteMessages returns the error
			}
			for _, m := range messages {
				line, _ := json.Marshal(map[string]any{"topic": m.Topic, "key": string(m.Key),
					"partition": m.Partition, "offset": m.Offset})
				fmt.Println(string(line))
			}
		},
	}
	defer writer.Close()

	now := time.Now().UnixMilli()
	docs := []map[string]any{{"type": "watch", "item_id": items[0], "watch_seconds": 540, "duration_seconds": 600}}
	for _, item := range items[1:] {
		docs = append(docs, map[string]any{"type": "click", "item_id": item})
	}
	var messages []kafka.Message
	for _, doc := range docs {
		doc["event_id"], doc["user_id"], doc["ts"] = newID(), userID, now
		value, _ := json.Marshal(doc)
		// key = user_id: all of a user's events on one partition, in order
		messages = append(messages, kafka.Message{Topic: eventsTopic, Key: []byte(userID), Value: value})
	}
	control, _ := json.Marshal(map[string]any{"control_id": newID(), "type": "declare_interests",
		"user_id": userID, "ts": now, "categories": []string{"Comedy"}})
	messages = append(messages, kafka.Message{Topic: controlsTopic, Key: []byte(userID), Value: control})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := writer.WriteMessages(ctx, messages...); err != nil {
		fmt.Fprintln(os.Stderr, "not delivered:", err)
		os.Exit(1)
	}
}

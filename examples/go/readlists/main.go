// Read a user's recommendation list from Go: from the topic, then over HTTP.
//
//	go run ./readlists USER_ID
//
// RECLOOP_KAFKA_BOOTSTRAP, RECLOOP_TOPIC_RECOMMENDATIONS and RECLOOP_API_URL
// (http://127.0.0.1:8000) configure it; RECLOOP_API_KEY is sent when set. Prints two JSON
// lines: the first list published for USER_ID on the recommendations topic (recommendation
// v1, keyed by user_id), then GET /v1/users/{USER_ID}/recommendations. Exits 1 if no list
// arrives within 60 s.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: readlists USER_ID")
		os.Exit(2)
	}
	userID := os.Args[1]
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     strings.Split(env("RECLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092"), ","),
		GroupID:     fmt.Sprintf("example-list-reader-go-%d", time.Now().UnixNano()),
		Topic:       env("RECLOOP_TOPIC_RECOMMENDATIONS", "recloop.recommendations"),
		StartOffset: kafka.FirstOffset,
		MaxWait:     500 * time.Millisecond,
	})
	defer reader.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		m, err := reader.ReadMessage(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "no list for", userID, "on the topic:", err)
			os.Exit(1)
		}
		if bytes.Equal(m.Key, []byte(userID)) {
			fmt.Println(string(m.Value))
			break
		}
	}

	endpoint := env("RECLOOP_API_URL", "http://127.0.0.1:8000") + "/v1/users/" + url.PathEscape(userID) + "/recommendations"
	req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
	if key := os.Getenv("RECLOOP_API_KEY"); key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "GET failed:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "GET answered", resp.Status, string(body))
		os.Exit(1)
	}
	fmt.Println(string(bytes.TrimSpace(body)))
}

#!/usr/bin/env sh
# Send events and a control to recloop over HTTP, then read the user's list.
#
#   sh events.sh USER_ID [ITEM_ID ...]
#
# RECLOOP_API_URL (http://127.0.0.1:8000) and RECLOOP_API_KEY (admin key, when the server
# has one) configure it. The server keys every record by user_id and produces it with
# Kafka's murmur2 partitioner, so nothing about partitions is needed here; `event_id` and
# `ts` are filled in when absent (send your own event_id to make a retried request harmless:
# duplicates are ignored by id).
set -eu

USER_ID=${1:?usage: events.sh USER_ID [ITEM_ID ...]}
shift
[ "$#" -gt 0 ] || set -- item-1 item-2
API=${RECLOOP_API_URL:-http://127.0.0.1:8000}
KEY_HEADER="X-API-Key: ${RECLOOP_API_KEY:-}"
FIRST=$1
shift

# one request, several events: all are produced, or none (422 lists every invalid one)
EVENTS="{\"type\": \"watch\", \"user_id\": \"$USER_ID\", \"item_id\": \"$FIRST\", \"watch_seconds\": 540, \"duration_seconds\": 600}"
for ITEM in "$@"; do
  EVENTS="$EVENTS, {\"type\": \"click\", \"user_id\": \"$USER_ID\", \"item_id\": \"$ITEM\"}"
done
curl -sS --fail-with-body -X POST "$API/v1/events" -H "$KEY_HEADER" \
  -H 'Content-Type: application/json' -d "[$EVENTS]"
echo

curl -sS --fail-with-body -X POST "$API/v1/controls" -H "$KEY_HEADER" \
  -H 'Content-Type: application/json' \
  -d "{\"type\": \"declare_interests\", \"user_id\": \"$USER_ID\", \"categories\": [\"Comedy\"]}"
echo

# the list the worker published (X-Recloop-Source: pipeline), or trending until it has
curl -sS --fail-with-body "$API/v1/users/$USER_ID/recommendations?n=5" -H "$KEY_HEADER"
echo

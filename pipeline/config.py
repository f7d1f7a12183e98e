"""One frozen ``Settings`` object: the only place that reads the environment.

Every knob has an environment variable ``RECLOOP_<FIELD_NAME>`` (upper case) and a default
that works for the local stack started by ``recloop stack up``. Everything else in the
project receives a ``Settings`` instance explicitly, so tests build their own without
touching ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of workers, CLI and benchmarks (env prefix ``RECLOOP_``)."""

    model_config = SettingsConfigDict(env_prefix="RECLOOP_", frozen=True, extra="ignore")

    # --- connections -------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512.")
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for SSL/SASL_SSL.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL; rediss:// for TLS, redis://:password@host:port/db for auth.",
    )
    redis_namespace: str = Field(
        "recloop", description="First segment of every Redis key (several deployments, one Redis)."
    )
    redis_cluster: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Redis Cluster client: auto asks the server (INFO cluster) when a process "
        "connects; on/off skip the probe.",
    )

    # --- topics -------------------------------------------------------------------------
    app_id: str = Field("recloop", description="Kafka consumer group / Faust app id.")
    topic_events: str = Field("recloop.events", description="Input events (event v1).")
    topic_items: str = Field("recloop.items", description="Item catalogue (item v1).")
    topic_dlq: str = Field("recloop.events.dlq", description="Dead letters (dead-letter v1).")
    topic_recommendations: str = Field(
        "recloop.recommendations", description="Refreshed lists (recommendation v1)."
    )
    topic_controls: str = Field(
        "recloop.controls", description="User controls such as forget (control v1)."
    )
    topic_partitions: int = Field(
        8, ge=1, description="Partitions of the topics the app creates (max useful workers)."
    )
    topic_replication: int = Field(1, ge=1, description="Replication factor of created topics.")

    # --- worker -------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Bind address of the worker's web server.")
    web_port: int = Field(6066, description="Worker web port (metrics, health).")
    broker_session_timeout_seconds: float = Field(
        10.0,
        ge=6,
        description="Consumer session timeout: how fast a crashed worker's "
        "partitions move to the others.",
    )
    broker_heartbeat_interval_seconds: float = Field(
        1.0, gt=0, description="Consumer heartbeat interval (well below the session timeout)."
    )
    refresh_rescue_after_seconds: float = Field(
        15.0,
        ge=1,
        description="A list refresh still owed this long after it was due (its worker died) "
        "is done by any worker from Redis.",
    )
    data_dir: Path | None = Field(
        None,
        description="Writable folder for the worker's local Faust data (`<app id>-data` inside; "
        "nothing in it outlives the process). Unset: `<RECLOOP_STACK_DIR>/data`.",
    )
    batch_size: int = Field(500, ge=1, description="Max events handled per batch.")
    batches_in_flight: int = Field(
        2,
        ge=1,
        le=4,
        description="Batches whose I/O may be in flight while the next one is prepared "
        "(1: strictly one after the other).",
    )
    batch_within_seconds: float = Field(
        0.02, gt=0, description="Max wait to fill a batch before handling it."
    )
    batch_gather_seconds: float = Field(
        0.2,
        ge=0,
        description="Under a backlog, the longest a batch is gathered across several waits "
        "of `RECLOOP_BATCH_WITHIN_SECONDS` to fill it (only while the consumer is behind by "
        "at least what the batch lacks; 0: never).",
    )

    # --- framework (Faust, aiokafka, event loop): what a message costs before recloop ----
    worker_uvloop: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Event loop of `recloop worker`: uvloop (auto: when installed, as it is "
        "with the package on Linux and macOS; on: required) or asyncio's own (off).",
    )
    gc_gen0_threshold: int = Field(
        50_000,
        ge=0,
        description="First threshold of Python's garbage collector in `recloop worker` "
        "(CPython's default 700): fewer collector passes; 0 keeps the interpreter's.",
    )
    gc_freeze: bool = Field(
        True,
        description="Freeze the objects alive once `recloop worker` is ready (libraries, "
        "models): later collector passes skip them.",
    )
    faust_cython_optimizations: bool = Field(
        False,
        description="Faust's `cython_optimizations`: its repaired Cython fast paths for "
        "stream iteration and message dispatch.",
    )
    faust_monitor: bool = Field(
        True,
        description="Faust's Monitor sensor (per-message counters and timings recloop never "
        "reads); false: a monitor that records nothing.",
    )
    faust_stream_buffer_maxsize: int = Field(
        4096, ge=1, description="Faust's `stream_buffer_maxsize`: messages a stream prefetches."
    )
    broker_max_poll_records: int | None = Field(
        None,
        ge=1,
        description="Max records one consumer poll returns (aiokafka `max_poll_records`; "
        "unset: no limit).",
    )
    consumer_fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        le=30_000,
        description="Longest the broker holds a worker's fetch that finds no new records "
        "(aiokafka `fetch_max_wait_ms`; Faust's fixed value is 1500, which stalled busy "
        'workers: see README "The fetch that waited").',
    )
    producer_linger_seconds: float = Field(
        0.0,
        ge=0,
        description="Faust producer's `linger`: how long a send waits to fill a batch.",
    )

    # --- input validation ---------------------------------------------------------------
    max_event_bytes: int = Field(16_384, ge=256, description="Larger payloads are dead-lettered.")
    max_future_ms: int = Field(
        3_600_000, ge=0, description="Events with ts further ahead than this are dead-lettered."
    )

    # --- state and features -------------------------------------------------------------
    user_ttl_seconds: int = Field(30 * 86_400, ge=60, description="TTL of every per-user key.")
    affinity_half_life_seconds: float = Field(
        3 * 86_400, gt=0, description="Half-life of category affinities and the user history."
    )
    trending_half_life_seconds: float = Field(
        6 * 3_600, gt=0, description="Half-life of item popularity used for trending."
    )
    history_size: int = Field(
        200,
        ge=1,
        description="Last N interactions kept per user; co-occurrence learns from the last "
        "RECLOOP_LEARN_CONTEXT distinct items among them.",
    )
    dedupe_ids_per_user: int = Field(
        2_000, ge=10, description="Recent event ids remembered per user for de-duplication."
    )
    forget_marker_seconds: int = Field(
        7 * 86_400,
        ge=60,
        description="How long a forget drops the user's older events arriving late "
        "(at least the events topic's retention).",
    )
    dormant_after_seconds: float = Field(
        7 * 86_400, gt=0, description="A user without events this long is 'dormant'."
    )
    completion_threshold: float = Field(
        0.6, ge=0, le=1, description="Watch completion at or above which a watch is 'completed'."
    )

    # --- model bounds (memory per worker is set by these, not by traffic) -------------
    learn_context: int = Field(
        100,
        ge=1,
        description="Distinct recent items of the user a positive teaches co-occurrence "
        "with (an item is often two interactions: keep RECLOOP_HISTORY_SIZE about twice this).",
    )
    model_neighbors: int = Field(
        400,
        ge=2,
        description="Co-occurrence neighbours an item keeps at most; a full row keeps its "
        "heaviest three quarters to make room.",
    )
    model_neighbor_memory_mb: int = Field(
        512,
        ge=1,
        description="MiB the co-occurrence neighbour rows of a worker hold at most (8 bytes an "
        "entry); at the bound the lightest entries of all rows are dropped, down to three "
        "quarters.",
    )
    catalog_max_items: int = Field(
        2_000_000,
        ge=64,
        le=16_777_216,
        description="Items a worker's catalogue holds at most; the least recently seen 1 % "
        "are evicted when a new item finds it full (at most 2**24: neighbour rows name items "
        "by 24-bit index).",
    )
    catalog_evict_after_seconds: float = Field(
        365 * 86_400,
        ge=0,
        description="Items not seen (no event, no item record) this long are evicted from the "
        "catalogue; 0: only when full.",
    )
    trending_items_per_segment: int = Field(
        500, ge=10, description="Items a trending segment (locale, device) keeps (heavy hitters)."
    )
    trending_max_segments: int = Field(
        256, ge=1, description="Trending segments kept at most (the global one included)."
    )
    user_knn_max_users: int = Field(
        200_000,
        ge=0,
        description="Users whose recent window a worker keeps for user-kNN (the least recently "
        "active goes first); 0: user-kNN off.",
    )
    user_knn_max_likers: int = Field(
        500, ge=1, description="Recent users kept per item for user-kNN."
    )
    user_knn_window: int = Field(
        50,
        ge=1,
        description="Latest items of a user's sequence kept for user-kNN: what the user's "
        "nearest users vote for.",
    )
    rerank_memo_users: int = Field(
        4_096,
        ge=1,
        description="Users whose latest list head a worker keeps to train the learning-to-rank "
        "layer on their next choice (else it ranks the head again).",
    )

    # --- recommendations ----------------------------------------------------------------
    list_size: int = Field(20, ge=1, le=200, description="Items per recommendation list.")
    category_cap: int = Field(6, ge=1, description="Max items of one category in a list.")
    exploration_share: float = Field(
        0.0, ge=0, le=0.5, description="Share of a list given to items outside the profile."
    )
    new_item_share: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Share of a list given to items published or gone live within "
        "RECLOOP_NEW_ITEM_WINDOW_SECONDS (the new-item slot).",
    )
    new_item_window_seconds: float = Field(
        86_400.0, gt=0, description="How long an item counts as new for the new-item slot."
    )
    refresh_interval_ms: int = Field(
        500, ge=0, description="At most one list refresh per user per interval (coalescing)."
    )
    refresh_max_coalesce_seconds: float = Field(
        60.0,
        ge=0,
        description="Under overload a user's refresh waits up to the backlog (in seconds of "
        "work), at most this long: one list for several events instead of one each.",
    )
    stale_list_seconds: float = Field(
        300, gt=0, description="Active users' lists older than this are refreshed anyway."
    )
    active_user_seconds: float = Field(
        3_600, gt=0, description="A user is active for background refresh this long."
    )
    availability_sync_ms: int = Field(
        100,
        ge=10,
        description="How often a worker reads item availability changes other workers "
        "consumed (and checks availability windows passing).",
    )
    model_sync_seconds: float = Field(
        1.0, gt=0, description="How often a worker merges other workers' model updates."
    )
    model_snapshot_seconds: float = Field(
        60, gt=0, description="How often a worker writes a model snapshot to Redis."
    )
    trending_sync_seconds: float = Field(
        2.0, gt=0, description="How often a worker refreshes trending lists from Redis."
    )

    # --- experiments --------------------------------------------------------------------
    experiments_file: Path | None = Field(
        None, description="JSON file declaring A/B experiments (see pipeline/lists/experiments.py)."
    )
    experiment_return_seconds: str = Field(
        "86400,604800",
        pattern=r"^ *[1-9][0-9]* *(, *[1-9][0-9]* *)*$",
        description="Comma-separated return windows of the experiment report, in seconds: a "
        "user came back N s after their first exposure (day 1 and day 7).",
    )

    # --- HTTP API and console (recloop serve) -----------------------------------------
    api_host: str = Field(
        "127.0.0.1", description="Bind address of `recloop serve` (loopback only without a key)."
    )
    api_port: int = Field(8000, ge=1, le=65535, description="Port of `recloop serve`.")
    api_read_key: SecretStr | None = Field(
        None, description="API key for reading (GET /v1/...); none: no key needed on loopback."
    )
    api_admin_key: SecretStr | None = Field(
        None, description="API key for writing (events, controls, forget) and reading."
    )
    api_cors_origins: str = Field(
        "",
        description="Comma-separated origins allowed by CORS and allowed to write "
        "(empty: same origin only).",
    )
    api_allowed_hosts: str = Field(
        "localhost,127.0.0.1,[::1]",
        description="Comma-separated host names `recloop serve` answers to, port ignored "
        "(`*`: any); other Host headers get 400 (DNS rebinding). Probes are exempt.",
    )
    api_max_batch: int = Field(
        500, ge=1, le=10_000, description="Max events or controls in one POST (more: 413)."
    )
    api_worker_metrics_urls: str = Field(
        "", description="Comma-separated worker /metrics URLs the console overview reads."
    )

    # --- local stack --------------------------------------------------------------------
    stack_dir: Path = Field(Path(".recloop"), description="Data, logs and jars of the stack.")
    stack_kafka_port: int = Field(9092, description="Port of the local Kafka broker.")
    stack_kafka_controller_port: int = Field(9093, description="KRaft controller port.")
    stack_redis_port: int = Field(6379, description="Port of the local Redis.")
    kafka_version: str = Field("4.1.0", description="Apache Kafka version fetched with mvn.")

    @property
    def return_windows(self) -> tuple[int, ...]:
        """``experiment_return_seconds`` as sorted distinct seconds.

        >>> Settings(experiment_return_seconds="604800, 86400").return_windows
        (86400, 604800)
        """
        return tuple(sorted({int(s) for s in self.experiment_return_seconds.split(",")}))

    def to_env(self) -> dict[str, str]:
        """The settings as ``RECLOOP_*`` variables, to start another process with them."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"RECLOOP_{name.upper()}"] = str(value)
        return env

SELECT
  "t9"."workspace_id",
  "t9"."message_id",
  "t9"."type",
  "t9"."event",
  "t9"."name",
  "t9"."user_id",
  "t9"."anonymous_id",
  "t9"."group_id",
  "t9"."previous_id",
  "t9"."timestamp",
  "t9"."original_timestamp",
  "t9"."sent_at",
  "t9"."received_at",
  "t9"."timestamp_flag",
  "t9"."source_id",
  "t9"."source_type",
  "t9"."channel",
  "t9"."domain",
  "t9"."presence",
  "t9"."utm_campaign",
  "t9"."utm_source",
  "t9"."utm_medium",
  "t9"."utm_term",
  "t9"."utm_content",
  "t9"."store_id",
  "t9"."guide_id",
  "t9"."order_id",
  "t9"."amount",
  "t9"."currency",
  "t9"."line_items",
  "t9"."properties",
  "t9"."traits",
  "t9"."context",
  "t9"."ip",
  "t9"."batch_id"
FROM (
  SELECT
    "t3"."workspace_id",
    "t3"."m"."messageId" AS "message_id",
    "t3"."m"."type" AS "type",
    "t3"."m"."event" AS "event",
    "t3"."m"."name" AS "name",
    "t3"."m"."userId" AS "user_id",
    "t3"."m"."anonymousId" AS "anonymous_id",
    "t3"."m"."groupId" AS "group_id",
    "t3"."m"."previousId" AS "previous_id",
    CAST("t3"."m"."timestamp" AS TIMESTAMPTZ) AS "timestamp",
    CAST("t3"."m"."originalTimestamp" AS TIMESTAMPTZ) AS "original_timestamp",
    CAST("t3"."m"."sentAt" AS TIMESTAMPTZ) AS "sent_at",
    "t3"."received_at",
    CASE
      WHEN CAST("t3"."m"."timestamp" AS TIMESTAMPTZ) > (
        "t3"."received_at" + INTERVAL '86400' SECOND
      )
      THEN 'future'
      WHEN CAST("t3"."m"."timestamp" AS TIMESTAMPTZ) < (
        "t3"."received_at" - INTERVAL '1825' DAY
      )
      THEN 'past'
      ELSE CAST(NULL AS TEXT)
    END AS "timestamp_flag",
    "t3"."source_id",
    "t3"."source_type",
    CASE
      WHEN (
        (
          "t3"."p"."context"
        )."quanyu"
      )."channel" IN (
        'ads',
        'app',
        'crm',
        'douyin',
        'form',
        'h5',
        'jd',
        'live_stream',
        'messaging',
        'mini_program',
        'offline_event',
        'pos',
        'server',
        'tmall',
        'webhook',
        'website',
        'wechat_oa',
        'wecom',
        'xiaohongshu',
        'youzan'
      )
      THEN (
        (
          "t3"."p"."context"
        )."quanyu"
      )."channel"
      ELSE "t3"."channel"
    END AS "channel",
    CASE
      WHEN (
        (
          "t3"."p"."context"
        )."quanyu"
      )."domain" IN ('private', 'public')
      THEN (
        (
          "t3"."p"."context"
        )."quanyu"
      )."domain"
      ELSE "t3"."domain"
    END AS "domain",
    CASE
      WHEN (
        (
          "t3"."p"."context"
        )."quanyu"
      )."presence" IN ('offline', 'online')
      THEN (
        (
          "t3"."p"."context"
        )."quanyu"
      )."presence"
      ELSE "t3"."presence"
    END AS "presence",
    COALESCE(
      NULLIF((
        (
          "t3"."p"."context"
        )."campaign"
      )."name", ''),
      NULLIF((
        "t3"."p"."properties"
      )."utm_campaign", '')
    ) AS "utm_campaign",
    COALESCE(
      NULLIF((
        (
          "t3"."p"."context"
        )."campaign"
      )."source", ''),
      NULLIF((
        "t3"."p"."properties"
      )."utm_source", '')
    ) AS "utm_source",
    COALESCE(
      NULLIF((
        (
          "t3"."p"."context"
        )."campaign"
      )."medium", ''),
      NULLIF((
        "t3"."p"."properties"
      )."utm_medium", '')
    ) AS "utm_medium",
    COALESCE(
      NULLIF((
        (
          "t3"."p"."context"
        )."campaign"
      )."term", ''),
      NULLIF((
        "t3"."p"."properties"
      )."utm_term", '')
    ) AS "utm_term",
    COALESCE(
      NULLIF((
        (
          "t3"."p"."context"
        )."campaign"
      )."content", ''),
      NULLIF((
        "t3"."p"."properties"
      )."utm_content", '')
    ) AS "utm_content",
    COALESCE(
      NULLIF((
        "t3"."p"."properties"
      )."store_id", ''),
      NULLIF((
        (
          "t3"."p"."context"
        )."quanyu"
      )."store_id", '')
    ) AS "store_id",
    COALESCE(
      NULLIF((
        "t3"."p"."properties"
      )."guide_id", ''),
      NULLIF((
        (
          "t3"."p"."context"
        )."quanyu"
      )."guide_id", '')
    ) AS "guide_id",
    COALESCE(NULLIF((
      "t3"."p"."properties"
    )."order_id", '')) AS "order_id",
    COALESCE(
      (
        "t3"."p"."properties"
      )."total",
      (
        "t3"."p"."properties"
      )."revenue",
      (
        "t3"."p"."properties"
      )."amount",
      (
        "t3"."p"."properties"
      )."value"
    ) AS "amount",
    CASE
      WHEN (
        UPPER((
          "t3"."p"."properties"
        )."currency") IS NULL
      )
      AND (
        COALESCE(
          (
            "t3"."p"."properties"
          )."total",
          (
            "t3"."p"."properties"
          )."revenue",
          (
            "t3"."p"."properties"
          )."amount",
          (
            "t3"."p"."properties"
          )."value"
        ) IS NOT NULL
      )
      THEN 'CNY'
      ELSE UPPER((
        "t3"."p"."properties"
      )."currency")
    END AS "currency",
    CASE
      WHEN CASE
        WHEN JSON_TYPE((
          "t3"."p"."properties"
        )."products") = 'ARRAY'
        THEN CAST(CAST((
          "t3"."p"."properties"
        )."products" AS JSON) AS JSON[])
        ELSE NULL
      END IS NOT NULL
      THEN (
        "t3"."p"."properties"
      )."products"
      ELSE CAST(NULL AS JSON)
    END AS "line_items",
    "t3"."m"."properties" AS "properties",
    COALESCE("t3"."m"."traits", (
      "t3"."p"."context"
    )."traits") AS "traits",
    "t3"."m"."context" AS "context",
    (
      "t3"."p"."context"
    )."ip" AS "ip",
    "t3"."batch_id"
  FROM (
    SELECT
      "t0"."batch_id",
      "t0"."workspace_id",
      "t0"."source_id",
      "t0"."source_type",
      "t0"."channel",
      "t0"."domain",
      "t0"."presence",
      "t0"."received_at",
      UNNEST(
        JSON_TRANSFORM(
          "t0"."payload",
          '[{"messageId":"VARCHAR","type":"VARCHAR","event":"VARCHAR","name":"VARCHAR","userId":"VARCHAR","anonymousId":"VARCHAR","groupId":"VARCHAR","previousId":"VARCHAR","timestamp":"VARCHAR","originalTimestamp":"VARCHAR","sentAt":"VARCHAR","properties":"JSON","traits":"JSON","context":"JSON"}]'
        )
      ) AS "m",
      UNNEST(
        JSON_TRANSFORM(
          "t0"."payload",
          '[{"properties":{"order_id":"VARCHAR","total":"DOUBLE","revenue":"DOUBLE","amount":"DOUBLE","value":"DOUBLE","currency":"VARCHAR","store_id":"VARCHAR","guide_id":"VARCHAR","products":"JSON","utm_campaign":"VARCHAR","utm_source":"VARCHAR","utm_medium":"VARCHAR","utm_term":"VARCHAR","utm_content":"VARCHAR"},"context":{"ip":"VARCHAR","campaign":{"name":"VARCHAR","source":"VARCHAR","medium":"VARCHAR","term":"VARCHAR","content":"VARCHAR"},"quanyu":{"channel":"VARCHAR","domain":"VARCHAR","presence":"VARCHAR","store_id":"VARCHAR","guide_id":"VARCHAR"},"traits":"JSON"}}]'
        )
      ) AS "p"
    FROM "_quanyu_batches" AS "t0"
  ) AS "t3"
) AS "t9"
ANTI JOIN (
  SELECT
    "t1"."workspace_id",
    "t1"."message_id"
  FROM "events" AS "t1"
  WHERE
    "t1"."received_at" >= MAKE_TIMESTAMPTZ(2026, 1, 1, 0, 0, 0.0, 'UTC')
) AS "t5"
  ON "t9"."workspace_id" = "t5"."workspace_id"
  AND "t9"."message_id" = "t5"."message_id"
ANTI JOIN (
  SELECT
    "t7"."workspace_id",
    "t7"."message_id",
    "t7"."batch_id"
  FROM (
    SELECT
      "t6"."workspace_id",
      "t6"."batch_id",
      "t6"."message_id",
      MIN("t6"."batch_id") OVER (
        PARTITION BY "t6"."workspace_id", "t6"."message_id"
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      ) AS "first_batch"
    FROM (
      SELECT
        "t4"."workspace_id",
        "t4"."batch_id",
        "t4"."m"."messageId" AS "message_id"
      FROM (
        SELECT
          "t0"."workspace_id",
          "t0"."batch_id",
          UNNEST(JSON_TRANSFORM("t0"."payload", '[{"messageId":"VARCHAR"}]')) AS "m"
        FROM "_quanyu_batches" AS "t0"
      ) AS "t4"
    ) AS "t6"
  ) AS "t7"
  WHERE
    "t7"."batch_id" > "t7"."first_batch"
) AS "t11"
  ON "t9"."workspace_id" = "t11"."workspace_id"
  AND "t9"."message_id" = "t11"."message_id"
  AND "t9"."batch_id" = "t11"."batch_id"

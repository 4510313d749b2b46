SELECT
  `t3`.`profile_id`
FROM (
  SELECT
    *
  FROM `profiles` AS `t0`
  WHERE
    `t0`.`workspace_id` = 'ws_golden'
    AND NOT (
      `t0`.`profile_id` IN (
        SELECT
          `t1`.`profile_id`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`event` IN ('Message Delivered', 'Coupon Sent', 'SMS Delivered', 'WeCom Message Sent')
          AND `t1`.`timestamp` >= CAST('2026-03-31T00:00:00+00:00' AS TIMESTAMP)
      )
    )
) AS `t3`

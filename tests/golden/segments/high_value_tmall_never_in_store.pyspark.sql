SELECT
  `t7`.`profile_id`
FROM (
  SELECT
    *
  FROM `profiles` AS `t0`
  WHERE
    `t0`.`workspace_id` = 'ws_golden'
    AND `t0`.`profile_id` IN (
      SELECT
        `t5`.`profile_id`
      FROM (
        SELECT
          `t3`.`profile_id`,
          COUNT(*) AS `n`,
          SUM(`t3`.`amount`) AS `sum`
        FROM (
          SELECT
            *
          FROM `person_events` AS `t1`
          WHERE
            `t1`.`workspace_id` = 'ws_golden'
            AND `t1`.`profile_id` IS NOT NULL
            AND `t1`.`event` IN ('Order Completed')
            AND `t1`.`channel` IN ('tmall')
        ) AS `t3`
        GROUP BY
          1
      ) AS `t5`
      WHERE
        COALESCE(`t5`.`sum` >= 300.0, FALSE)
    )
    AND NOT (
      `t0`.`profile_id` IN (
        SELECT
          `t1`.`profile_id`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`event` IN ('Store Visited')
      )
      OR `t0`.`profile_id` IN (
        SELECT
          `t1`.`profile_id`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`type` = 'track'
          AND `t1`.`presence` = 'offline'
      )
    )
) AS `t7`

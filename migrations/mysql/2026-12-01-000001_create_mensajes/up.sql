-- Messages, exactly as the seed's schema.sql defines them, so that a seed database is
-- adopted in place (IF NOT EXISTS) and the seed's own INSERT keeps working.
CREATE TABLE IF NOT EXISTS mensajes (
  id           BIGINT AUTO_INCREMENT PRIMARY KEY,
  de_usuario   VARCHAR(64) NOT NULL,
  para_usuario VARCHAR(64) NOT NULL,
  mensaje      TEXT NOT NULL,
  fecha        DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- What mensajero adds: the history indexes and `clave`, the writer's idempotency key
-- (NULL for rows written by anything else): a batch retried after an ambiguous failure
-- skips the rows whose key is already stored.
ALTER TABLE mensajes
  ADD COLUMN clave VARCHAR(40) NULL,
  ADD INDEX mensajes_de_usuario (de_usuario, id),
  ADD INDEX mensajes_para_usuario (para_usuario, id),
  ADD UNIQUE INDEX mensajes_clave (clave);

-- Messages. `fecha` is UTC text with milliseconds, as Diesel writes a NaiveDateTime;
-- the default matches it for rows inserted without one (the seed's INSERT).
-- `clave` is the writer's idempotency key (NULL for rows written by anything else):
-- a batch retried after an ambiguous failure skips the rows whose key is already stored.
CREATE TABLE mensajes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    de_usuario   VARCHAR(64) NOT NULL,
    para_usuario VARCHAR(64) NOT NULL,
    mensaje      TEXT NOT NULL,
    fecha        TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    clave        VARCHAR(40) NULL
);
CREATE INDEX mensajes_de_usuario ON mensajes (de_usuario, id);
CREATE INDEX mensajes_para_usuario ON mensajes (para_usuario, id);
CREATE UNIQUE INDEX mensajes_clave ON mensajes (clave);

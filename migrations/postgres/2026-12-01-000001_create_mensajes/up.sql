-- Messages. `fecha` is a UTC timestamp without time zone, millisecond precision.
-- `clave` is the writer's idempotency key (NULL for rows written by anything else):
-- a batch retried after an ambiguous failure skips the rows whose key is already stored.
CREATE TABLE mensajes (
    id           BIGSERIAL PRIMARY KEY,
    de_usuario   VARCHAR(64) NOT NULL,
    para_usuario VARCHAR(64) NOT NULL,
    mensaje      TEXT NOT NULL,
    fecha        TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    clave        VARCHAR(40) NULL
);
CREATE INDEX mensajes_de_usuario ON mensajes (de_usuario, id);
CREATE INDEX mensajes_para_usuario ON mensajes (para_usuario, id);
CREATE UNIQUE INDEX mensajes_clave ON mensajes (clave);

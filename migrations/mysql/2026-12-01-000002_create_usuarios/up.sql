-- Sign-in accounts. `pass` is a bcrypt hash; `rol` is `admin` or `user`.
-- IF NOT EXISTS: the original application's database may already have this table.
CREATE TABLE IF NOT EXISTS usuarios (
  usuario VARCHAR(64) NOT NULL PRIMARY KEY,
  nombre  VARCHAR(255) NOT NULL,
  rol     VARCHAR(16) NOT NULL,
  pass    VARCHAR(255) NOT NULL,
  imagen  VARCHAR(255) NULL,
  INDEX usuarios_rol (rol)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Sign-in accounts. `pass` is a bcrypt hash; `rol` is `admin` or `user`.
CREATE TABLE usuarios (
    usuario VARCHAR(64) PRIMARY KEY,
    nombre  VARCHAR(255) NOT NULL,
    rol     VARCHAR(16) NOT NULL,
    pass    VARCHAR(255) NOT NULL,
    imagen  VARCHAR(255) NULL
);
CREATE INDEX usuarios_rol ON usuarios (rol);

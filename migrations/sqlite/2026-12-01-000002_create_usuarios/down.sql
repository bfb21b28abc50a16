DROP TABLE usuarios;

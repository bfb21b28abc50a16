DROP TABLE mensajes;

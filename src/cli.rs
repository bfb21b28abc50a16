//! The command line: `serve`, `migrate`, `token`, `users` (SPEC 7).
//!
//! Each command loads the same layered [`Settings`], so a flag, a file and an environment
//! variable can never disagree about which database or secret is in use.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::broker::Role;
use crate::broker::auth::TokenService;
use crate::config::Settings;
use crate::storage::{Storage, UserRecord};

#[derive(Parser)]
#[command(
    name = "mensajero",
    version,
    about = "Socket.IO message broker for support-desk chat"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default command).
    Serve {
        /// Address to listen on (default from config: 127.0.0.1:3000).
        #[arg(long)]
        bind: Option<String>,
        /// Create demo sign-in accounts and print them; allows an unset JWT_SECRET.
        #[arg(long)]
        demo: bool,
    },
    /// Run pending migrations on DATABASE_URL and exit.
    Migrate,
    /// Print one JWT signed with JWT_SECRET.
    Token {
        #[arg(long)]
        user: String,
        #[arg(long, value_enum)]
        rol: RoleArg,
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in seconds (default: auth.session_ttl_secs).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Manage sign-in accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add or replace an account; the password is read from the first line of stdin.
    Add {
        name: String,
        #[arg(long, value_enum)]
        rol: RoleArg,
        #[arg(long)]
        nombre: Option<String>,
    },
    /// List accounts.
    List,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    User,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::User => Role::User,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    let outcome = match cli.command.unwrap_or(Command::Serve {
        bind: None,
        demo: false,
    }) {
        Command::Serve { bind, demo } => {
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            settings.demo |= demo;
            actix_web::rt::System::new()
                .block_on(crate::server::run(settings))
                .map_err(|e| e.to_string())
        }
        Command::Migrate => Storage::migrate(&settings.storage)
            .map(|applied| {
                for name in &applied {
                    println!("applied {name}");
                }
                println!("{} migration(s) applied", applied.len());
            })
            .map_err(|e| e.to_string()),
        Command::Token {
            user,
            rol,
            name,
            ttl,
        } => token(&settings, &user, rol.into(), name, ttl),
        Command::Users { command } => users(settings, command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("mensajero: {error}");
    ExitCode::FAILURE
}

fn token(
    settings: &Settings,
    user: &str,
    role: Role,
    name: Option<String>,
    ttl: Option<u64>,
) -> Result<(), String> {
    if settings.jwt_secret.is_empty() {
        return Err("JWT_SECRET is not set".into());
    }
    let tokens =
        TokenService::new(&settings.jwt_secret, &settings.auth).map_err(|e| e.to_string())?;
    let ttl = Duration::from_secs(ttl.unwrap_or(settings.auth.session_ttl_secs));
    println!(
        "{}",
        tokens.issue(user, name.as_deref().unwrap_or(user), role, ttl)
    );
    Ok(())
}

fn users(settings: Settings, command: UsersCommand) -> Result<(), String> {
    let password = match &command {
        UsersCommand::Add { .. } => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            if line.is_empty() {
                return Err("password expected on stdin".into());
            }
            Some(line)
        }
        UsersCommand::List => None,
    };
    actix_web::rt::System::new().block_on(async move {
        let storage = Storage::start(&settings.storage).map_err(|e| e.to_string())?;
        let result = match command {
            UsersCommand::Add { name, rol, nombre } => {
                let hash = crate::http::accounts::hash_password(&password.unwrap_or_default());
                let record = UserRecord {
                    nombre: nombre.unwrap_or_else(|| name.clone()),
                    usuario: name.clone(),
                    rol: Role::from(rol).as_str().to_string(),
                    pass: hash,
                    imagen: None,
                };
                storage
                    .upsert_user(record)
                    .await
                    .map(|()| println!("user {name} saved"))
            }
            UsersCommand::List => storage.list_users().await.map(|users| {
                for u in users {
                    println!("{}\t{}\t{}", u.usuario, u.rol, u.nombre);
                }
            }),
        };
        storage.flush_and_stop().await;
        storage.close().await;
        result.map_err(|e| e.to_string())
    })
}

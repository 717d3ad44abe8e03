<?php

/**
 * mailgov: the ministry's rules inside Roundcube (roles/webmail, docs/security.md WEB-*).
 *
 * - An attachment whose file name ends in a blocked extension (the data's
 *   policy.blocked_attachments) is refused at upload, with the reason; Postfix refuses such a
 *   message anyway (ABUSE-01), this only says so before the message is written.
 * - A login Dovecot refuses because the password is an initial one (its reply carries
 *   mailgov_first_login_reason, sent only after the password was checked) goes to the
 *   password page, the one place where that password can be changed.
 * - No page names Roundcube's version (WEB-02): the template object "version" (the About
 *   dialog) is empty, and the number Roundcube writes into every page's script environment
 *   (env.rcversion, read by neither Roundcube's scripts nor ours) is taken out.
 */
class mailgov extends rcube_plugin
{
    // Every task: the version is in every page (login, mail, settings, address book).

    function init()
    {
        $this->load_config();
        $this->add_texts('localization/');
        $this->add_hook('attachment_upload', [$this, 'attachment_upload']);
        $this->add_hook('login_failed', [$this, 'login_failed']);
        $this->add_hook('template_object_version', [$this, 'no_version']);
        $this->add_hook('send_page', [$this, 'no_version_env']);
    }

    /** The template object "version": nothing. */
    function no_version($args)
    {
        $args['content'] = '';
        return $args;
    }

    /**
     * The page as sent, without the member "rcversion":NNNNN of its rcmail.set_env({...}).
     * Done here, on the page Roundcube built, rather than by nginx's sub_filter: that only
     * replaces fixed strings (the number of one release, silently stale after an upgrade).
     */
    function no_version_env($args)
    {
        $args['content'] = preg_replace(
            ['/"rcversion":\d+,/', '/,"rcversion":\d+(?=\})/'], '', (string) $args['content']);
        return $args;
    }

    /** Refuse a blocked file type; runs before filesystem_attachments stores it. */
    function attachment_upload($args)
    {
        $blocked = (array) rcmail::get_instance()->config->get('mailgov_blocked_extensions', []);
        $name = strtolower((string) ($args['name'] ?? ''));
        $dot = strrpos($name, '.');
        $ext = $dot === false ? '' : substr($name, $dot + 1);
        if ($ext !== '' && in_array($ext, $blocked, true)) {
            $args['abort'] = true;
            $args['status'] = false;
            $args['error'] = $this->gettext(['name' => 'blockedtype', 'vars' => ['ext' => $ext]]);
            rcube::write_log('userlogins', sprintf('Blocked attachment type .%s refused for %s',
                $ext, rcmail::get_instance()->get_user_name()));
        }
        return $args;
    }

    /** An initial password: to the change form, with the reason. */
    function login_failed($args)
    {
        $rcmail = rcmail::get_instance();
        $reason = trim((string) $rcmail->config->get('mailgov_first_login_reason', ''));
        $url = (string) $rcmail->config->get('mailgov_password_page', '');
        if ($reason === '' || $url === '' || !is_object($rcmail->storage)) {
            return $args;
        }
        $said = (string) $rcmail->storage->get_error_str();
        if (strpos($said, $reason) !== false) {
            $rcmail->kill_session();
            header('Location: ' . $url, true, 303);
            exit;
        }
        return $args;
    }
}
